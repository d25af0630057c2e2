"""A running node picks up what `dms cap` writes into its state directory: anchors
added or removed (`anchors.json`), grants to hold and revocations (its token store).

`dms cap` works on the files, not through the node: it needs no grant and works with
the node stopped. While the node runs, this watch looks at the files' modification
times every `STATE_CHECK` seconds and, when one changed, takes in what is new: an
anchor counts (or stops counting) from the next invocation; a held grant proves the
node's next invocations (a market grant makes it an orchestrator); a revocation is
applied and flooded to the peers. Only the names of the token files are listed; a
token is read once, when its CID is new here. A file that does not read is logged and
left out, never the node's end.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import trio

from dms.net import MeshNotRunning
from dms.node._anchors import InvalidAnchors, anchors_path, read_anchors
from dms.node._revocations import RevocationKeeper
from ucan import CID, Invocation, TrustContext, UcanError
from ucan.store import TokenStore

log = logging.getLogger("dms.node")

STATE_CHECK = 1.0
"""Seconds between looks at the state directory's files."""


def _stamp(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class StateWatch:
    """What of the state directory the node has taken in so far."""

    def __init__(self, trust: TrustContext, keeper: RevocationKeeper,
                 publish: Callable[[Invocation], Awaitable[None]],
                 state_dir: str | os.PathLike[str], store: TokenStore,
                 flag_anchors: Iterable[str]) -> None:
        """`trust`, `keeper`: the node's; `publish(revocation)` floods one to the peers."""
        self.trust = trust
        self.keeper = keeper
        self.publish = publish
        self.state_dir = Path(state_dir)
        self.store = store
        self.flag_anchors = frozenset(flag_anchors)
        self.file_anchors = frozenset(trust.anchors) - self.flag_anchors
        self.delegations = set(trust.provided)
        self.revocations: set[CID] = set()
        self.unread: set[CID] = set()  # files that did not read (yet): tried at each look
        self.stamps: tuple[int | None, ...] = ()  # the first look takes in all there is

    def _stamps(self) -> tuple[int | None, ...]:
        return (_stamp(anchors_path(self.state_dir)), _stamp(self.store.directory),
                _stamp(self.store.directory / "revocations"))

    def _anchors(self) -> tuple[str, ...] | None:
        try:
            return read_anchors(self.state_dir)
        except InvalidAnchors as exc:
            log.warning("anchors left as they were: %s", exc)
            return None

    async def run(self) -> None:
        while True:
            await trio.sleep(STATE_CHECK)
            await self.check()

    async def check(self) -> None:
        """Take in what changed since the last look (nothing when no file did)."""
        stamps = self._stamps()
        if stamps == self.stamps and not self.unread:
            return
        self.stamps = stamps
        self._take_anchors()
        self._take_delegations()
        await self._take_revocations()

    def _take_anchors(self) -> None:
        found = self._anchors()
        if found is None:
            return
        now, trust = frozenset(found), self.trust
        for gone in self.file_anchors - now - self.flag_anchors:
            trust.anchors.discard(gone)
            log.info("anchor %s removed", gone)
        for new in now - self.file_anchors:
            trust.add_anchor(new)
            log.info("anchor %s added", new)
        self.file_anchors = now

    def _take_delegations(self) -> None:
        present = self.store.delegation_cids()
        self.delegations &= present  # a file that went is not remembered: bounded
        for cid in present - self.delegations:
            try:
                delegation = self.store.delegation(cid)
            except (UcanError, OSError, KeyError) as exc:
                self._unread(cid, "held grant", exc)
                continue
            self._read(cid, self.delegations)
            if delegation.cid not in self.trust.provided:
                self.trust.provide(delegation)
                log.info("holding grant %s (%s from %s)", cid, delegation.cmd, delegation.iss)

    async def _take_revocations(self) -> None:
        present = self.store.revocation_cids()
        self.revocations &= present  # forgotten ones (expired) went: bounded
        for cid in present - self.revocations:
            try:
                revocation = self.store.revocation(cid)
            except (UcanError, OSError, KeyError) as exc:
                self._unread(cid, "revocation", exc)
                continue
            self._read(cid, self.revocations)
            if self.trust.revocations.kept(revocation):
                continue  # the node's own keeping wrote it: applied, and flooded then
            try:
                self.keeper.apply(revocation)
            except UcanError as exc:
                log.warning("revocation %s left out: %s", cid, exc)
                continue
            log.info("revocation %s applied", cid)
            with contextlib.suppress(MeshNotRunning):  # peers get it when they link again
                await self.publish(revocation)

    def _unread(self, cid: CID, what: str, problem: Exception) -> None:
        """A file that does not read now (torn while it is written, or garbage): said
        once, and read again at each look until it does."""
        if cid not in self.unread:
            log.warning("%s %s left out until its file reads: %s", what, cid, problem)
        self.unread.add(cid)

    def _read(self, cid: CID, taken: set[CID]) -> None:
        taken.add(cid)
        self.unread.discard(cid)
