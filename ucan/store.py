"""A token store on disk: delegations and revocations as raw envelopes named by CID.

Layout: `<dir>/<cid>.ucan` for delegations, `<dir>/revocations/<cid>.ucan` for
`/ucan/revoke` invocations (and `<cid>.until` beside one, when what it revokes
expires). A file's name is checked against the hash of its bytes when
read, so a renamed or edited file is refused, never believed. Writes are atomic
(temporary file + rename) and idempotent: storing the same token twice is a no-op.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from ucan.codec import CID
from ucan.delegation import Delegation
from ucan.errors import MalformedToken
from ucan.invocation import Invocation
from ucan.revocation import revoked_cid
from ucan.trust import TrustContext

DEFAULT_STORE = "~/.local/share/ucan/tokens"
STORE_ENV = "UCAN_STORE"
SUFFIX = ".ucan"
UNTIL_SUFFIX = ".until"
"""Beside a stored revocation: when what it revokes expires (decimal Unix seconds)."""


class TokenNotFound(KeyError):
    """No token with that CID is stored."""

    name = "TokenNotFound"

    def __str__(self) -> str:
        return f"{self.name}: {self.args[0]}"


class TokenStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()
        self._revocations = self.directory / "revocations"

    def put_delegation(self, delegation: Delegation) -> CID:
        _write(self.directory, delegation.cid, delegation.envelope)
        return delegation.cid

    def put_revocation(self, revocation: Invocation, until: int | None = None) -> CID:
        """Store a verified revocation (MalformedToken/InvalidSignature otherwise), with
        `until`, when what it revokes expires, if known; returns the CID it revokes."""
        target = revoked_cid(revocation)
        _write(self._revocations, revocation.cid, revocation.envelope)
        if until is not None:
            _write(self._revocations, revocation.cid, str(int(until)).encode(), UNTIL_SUFFIX)
        return target

    def remove_delegation(self, cid: CID) -> None:
        """Forget a stored delegation (one no longer held); idempotent."""
        (self.directory / f"{cid}{SUFFIX}").unlink(missing_ok=True)

    def remove_revocation(self, cid: CID) -> None:
        """Forget a stored revocation (one that decides nothing any more); idempotent."""
        (self._revocations / f"{cid}{SUFFIX}").unlink(missing_ok=True)
        (self._revocations / f"{cid}{UNTIL_SUFFIX}").unlink(missing_ok=True)

    def revocation_until(self, cid: CID) -> int | None:
        """When what stored revocation `cid` revokes expires, as stored with it; None
        when that is not known (or its file does not read): kept for good then."""
        try:
            return int((self._revocations / f"{cid}{UNTIL_SUFFIX}").read_bytes())
        except (OSError, ValueError):
            return None

    def put(self, data: bytes) -> CID:
        """Store envelope bytes: a delegation, or a revocation. Returns the token's CID."""
        try:
            delegation = Delegation.decode(data)
        except MalformedToken:
            revocation = Invocation.decode(data)
            self.put_revocation(revocation)
            return revocation.cid
        return self.put_delegation(delegation)

    def delegation(self, cid: CID) -> Delegation:
        path = self.directory / f"{cid}{SUFFIX}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TokenNotFound(f"no delegation {cid} in {self.directory}") from None
        return _checked(Delegation.decode(data), path)

    def __contains__(self, cid: object) -> bool:
        return isinstance(cid, CID) and (self.directory / f"{cid}{SUFFIX}").is_file()

    def revocation(self, cid: CID) -> Invocation:
        path = self._revocations / f"{cid}{SUFFIX}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TokenNotFound(f"no revocation {cid} in {self._revocations}") from None
        return _checked(Invocation.decode(data), path)

    def delegation_cids(self) -> set[CID]:
        """The CIDs of the stored delegations, from their files' names alone (nothing is
        read or checked: `delegation(cid)` does that)."""
        return _names(self.directory)

    def revocation_cids(self) -> set[CID]:
        """The CIDs of the stored revocations, from their files' names alone."""
        return _names(self._revocations)

    def delegations(self) -> Iterator[Delegation]:
        for path in _files(self.directory):
            yield _checked(Delegation.decode(path.read_bytes()), path)

    def revocations(self) -> Iterator[Invocation]:
        for path in _files(self._revocations):
            yield _checked(Invocation.decode(path.read_bytes()), path)

    def load_into(self, trust: TrustContext) -> list[str]:
        """Give `trust` every stored delegation (as provided) and revocation, the latter
        kept as it was before: until one retention period past its revoked
        delegation's expiry (the held delegation's own when it is held, else the one
        stored with the revocation), for good when neither is known (it was
        stored because it mattered, and a restart must not make it forgettable sooner). A delegation file that does not read (torn, garbage) is left
        out, and said in what this returns, as a running node's watch leaves it out; a
        revocation that does not read is MalformedToken naming its file: starting
        without it could undo it."""
        left_out = []
        for path in _files(self.directory):
            try:
                trust.provide(_checked(Delegation.decode(path.read_bytes()), path))
            except (MalformedToken, OSError) as exc:
                left_out.append(f"{path}: {exc}")
        for path in _files(self._revocations):
            try:
                revocation = _checked(Invocation.decode(path.read_bytes()), path)
            except MalformedToken as exc:
                raise MalformedToken(f"revocation file {path} does not read: {exc.message} "
                                     f"(restore it, or remove it to forget that "
                                     f"revocation)") from None
            target = revoked_cid(revocation)
            # A delegation still held says when it ends (its bytes are signed; the
            # `.until` beside the revocation is not): a file that lies cannot shorten it.
            held = trust.provided.get(target)
            until = self.revocation_until(revocation.cid) if held is None else held.exp
            trust.revocations.keep(revocation, target, until=until)
        return left_out


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX and p.is_file())


def _names(directory: Path) -> set[CID]:
    found = set()
    for path in _files(directory):
        try:
            found.add(CID.parse(path.stem))
        except MalformedToken:
            continue  # not a token's name: never read as one
    return found


_Token = TypeVar("_Token", Delegation, Invocation)


def _checked(token: _Token, path: Path) -> _Token:
    if path.name != f"{token.cid}{SUFFIX}":
        raise MalformedToken(f"{path}: holds token {token.cid}, not the one its name says")
    return token


def _write(directory: Path, cid: CID, data: bytes, suffix: str = SUFFIX) -> None:
    path = directory / f"{cid}{suffix}"
    if path.exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
