"""`dms cap`: a node's authority, kept in its data directory (`dms init` made it).

    dms cap anchor add DID          accept DID as a root of authority (`anchor list`, `remove`)
    dms cap grant --to DID --cmd /dms/node/deployment [--policy JSON] [--exp 7d] [-o FILE]
                                    a delegation issued by the node key
    dms cap add FILE...             hold grants given to the node (e.g. an organisation's
                                    /dms/deployment, to bid or orchestrate in its market)
    dms cap list                    anchors, held grants, revocations
    dms cap revoke CID              revoke a grant the node issued (or one above it)

These work on the node's files, with the `ucan` library and the node's own token
store (`STATE/tokens`) and anchors file (`STATE/anchors.json`): no second copy of
either, and no grant needed (whoever can write the data directory owns the node). A
node reads them when it starts, and a running one takes a change in within seconds
(`dms.node._state_watch`: anchors, grants to hold, revocations, which it then floods);
the command says when such a node runs (naming its pid).

Exit 0 done, 1 what was asked is not there (an anchor to remove), 2 a usage mistake
(a bad DID, command, policy, file, a wrong passphrase, no node in the data directory).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import click

import dms.deployment as deployment
import dms.node as node_behaviors
from dms.node._anchors import InvalidAnchors, check_anchor, read_anchors, write_anchors
from dms.node._command import load_key_or_exit
from dms.node._config import NODE_KEY, DataLayout
from dms.node._state_lock import held_by
from dms.node._state_watch import STATE_CHECK
from dms.provider import wire
from ucan import (
    CID,
    Delegation,
    MalformedToken,
    SigningKey,
    UcanError,
    check_command,
    delegate,
    parse_policy,
    proves,
    public_key_from_did,
    read_tokens,
)
from ucan.cli import DEFAULT_GRANT_EXPIRY, from_dag_json, parse_expiry
from ucan.keystore import Keystore, KeystoreError, open_key
from ucan.revocation import revoke
from ucan.store import TokenStore

from ._config import data_directory
from ._errors import Mistake, OperationFailed

DMS_COMMANDS = (
    node_behaviors.PING, node_behaviors.PEERS, node_behaviors.INFO, node_behaviors.RESOURCES,
    deployment.NEW, deployment.STATUS, deployment.LIST, deployment.EVENTS,
    deployment.SHUTDOWN, deployment.LOGS, deployment.PLAN,
    wire.REQUEST, wire.BID, wire.COMMIT, wire.REVERT, wire.ALLOCATE, wire.SHUTDOWN,
    wire.ALLOCATIONS, wire.MEASURE, wire.PROBE, wire.ALLOCATION)
"""What a dms node answers: a grant that proves none of them is likely a typo."""
REVOCATIONS_SHOWN = 20
"""Revocations listed as text (the node keeps those of its stopped actors' grants too)."""


@attrs.frozen
class NodeFiles:
    """The node of a data directory: its key's DID, its token store, its state."""

    layout: DataLayout

    @property
    def store(self) -> TokenStore:
        return TokenStore(self.layout.state / "tokens")

    @property
    def did(self) -> str:
        if not Keystore(self.layout.keystore).path_of(NODE_KEY).exists():
            raise Mistake(f"no node in {self.layout.root} (no {NODE_KEY} key in "
                          f"{self.layout.keystore}): make one with `dms init --data-dir "
                          f"{self.layout.root}`")
        try:
            return Keystore(self.layout.keystore).did(NODE_KEY)
        except KeystoreError as exc:
            raise Mistake(str(exc)) from None

    def key(self) -> SigningKey:
        self.did  # noqa: B018 - names the data directory when there is no key
        return load_key_or_exit(lambda: open_key(self.layout.keystore, NODE_KEY))

    def anchors(self) -> tuple[str, ...]:
        try:
            return read_anchors(self.layout.state)
        except InvalidAnchors as exc:
            raise Mistake(str(exc)) from None

    def held(self) -> list[Delegation]:
        try:
            return list(self.store.delegations())
        except UcanError as exc:
            raise Mistake(f"{self.store.directory}: {exc}") from None

    def changed(self) -> None:
        """Say that the node running now takes the change in by itself, and when."""
        holder = held_by(self.layout.state)
        if holder is not None:
            click.echo(f"note: the node running on {self.layout.root}{holder} takes this in "
                       f"within {2 * STATE_CHECK:g} s, no restart needed", err=True)


def _files(data_dir: str | None) -> NodeFiles:
    return NodeFiles(DataLayout(data_directory(data_dir)))


DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False),
                        help="The node's data directory (default $DMS_DATA_DIR or "
                             "~/.local/share/dms).")
JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _emit(as_json: bool, record: Any, text: str) -> None:
    click.echo(json.dumps(record) if as_json else text)


def _did(value: str, option: str) -> str:
    try:
        public_key_from_did(value)
    except (MalformedToken, ValueError, TypeError):
        raise Mistake(f"{option}: {value!r} is not the did:key of an Ed25519 key") from None
    return value


@click.group()
def cap() -> None:
    """A node's anchors and grants, in its data directory (see `dms init`)."""


# -- anchors -------------------------------------------------------------------------------


@cap.group()
def anchor() -> None:
    """The roots of authority the node accepts besides its own DID."""


@anchor.command("add")
@click.argument("did")
@DATA_DIR
@JSON
def anchor_add(did: str, data_dir: str | None, as_json: bool) -> None:
    """Accept DID's authority (its grants, and what they delegate) on the node."""
    files = _files(data_dir)
    _did(did, "DID")
    if did == files.did:
        raise Mistake(f"{did} is the node itself: its own authority needs no anchor")
    anchors = files.anchors()
    added = did not in anchors
    if added:
        write_anchors(files.layout.state, (*anchors, check_anchor(did)))
        files.changed()
    _emit(as_json, {"anchor": did, "added": added},
          f"anchor {did} {'added' if added else 'was there already'}")


@anchor.command("remove")
@click.argument("did")
@DATA_DIR
@JSON
def anchor_remove(did: str, data_dir: str | None, as_json: bool) -> None:
    """Stop accepting DID's authority (exit 1 if it was not an anchor)."""
    files = _files(data_dir)
    anchors = files.anchors()
    if did not in anchors:
        raise OperationFailed(f"{did} is not an anchor of {files.layout.root} (see `dms cap "
                              f"anchor list`)")
    write_anchors(files.layout.state, tuple(a for a in anchors if a != did))
    files.changed()
    _emit(as_json, {"anchor": did, "removed": True}, f"anchor {did} removed")


@anchor.command("list")
@DATA_DIR
@JSON
def anchor_list(data_dir: str | None, as_json: bool) -> None:
    """The anchors kept in the node's state directory."""
    anchors = _files(data_dir).anchors()
    _emit(as_json, {"anchors": list(anchors)}, "\n".join(anchors) or "no anchors")


# -- grants --------------------------------------------------------------------------------


@cap.command("grant")
@click.option("--to", "audience", required=True, metavar="DID", help="Who gets the capability.")
@click.option("--cmd", "command", required=True, metavar="CMD",
              help="The command granted, e.g. /dms/node/deployment or /dms/deployment.")
@click.option("--policy", metavar="JSON", help='A policy, e.g. \'[["<=", ".resources.cpu", 4]]\'.')
@click.option("--exp", metavar="DURATION|never", default=DEFAULT_GRANT_EXPIRY, show_default=True,
              help="Lifetime: 30s, 5m, 24h, 7d, 2w or never.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Where to write the grant (default DATA_DIR/grants/CID.ucan).")
@DATA_DIR
@JSON
def grant(audience: str, command: str, policy: str | None, exp: str, output: str | None,
          data_dir: str | None, as_json: bool) -> None:
    """Issue a grant of CMD on the node to DID, signed by the node key. A grant to the
    node itself (e.g. of /dms/deployment, to orchestrate under its own name) is also
    held by it."""
    files = _files(data_dir)
    _did(audience, "--to")
    try:
        check_command(command)
    except MalformedToken as exc:
        raise Mistake(f"--cmd: {exc.message}") from None
    if not any(proves(command, known) for known in DMS_COMMANDS):
        click.echo(f"warning: --cmd {command} grants none of a dms node's behaviors "
                   f"(they are under /dms/node/deployment, /dms/node and /dms/deployment); "
                   f"issued as asked", err=True)
    statements = _policy(policy)
    try:
        expiration = parse_expiry(exp, int(time.time()))
    except ValueError as exc:
        raise Mistake(f"--exp: {exc}") from None
    issued = delegate(files.key(), audience, command, policy=statements, expiration=expiration)
    path = Path(output) if output is not None else files.layout.grants / f"{issued.cid}.ucan"
    try:
        _write_private(path, issued.envelope)
    except OSError as exc:
        raise Mistake(f"-o {path}: {exc.strerror or exc}") from None
    held = audience == issued.iss
    if held:
        files.store.put_delegation(issued)
        files.changed()
    _emit(as_json, {**_described(issued), "file": str(path), "held": held},
          f"{issued.cid}: {command} to {audience}, {_expiry(issued)}\nwritten to {path}"
          + ("\nheld by the node" if held else f"\ngive it to {audience}: `dms cap add "
             f"{shlex.quote(str(path))}` on its node, or --proof {shlex.quote(str(path))} "
             f"with a client command"))


def _policy(text: str | None) -> list[Any]:
    if text is None:
        return []
    try:
        statements = from_dag_json(json.loads(text))
        parse_policy(statements)
    except json.JSONDecodeError as exc:
        raise Mistake(f"--policy: not JSON: {exc}") from None
    except MalformedToken as exc:
        raise Mistake(f"--policy: {exc.message}") from None
    return list(statements)


@cap.command("add")
@click.argument("paths", metavar="FILE...", nargs=-1, required=True)
@DATA_DIR
@JSON
def add(paths: tuple[str, ...], data_dir: str | None, as_json: bool) -> None:
    """Hold the grants in FILEs (raw .ucan or container text): each must be given to
    the node; they prove what its actors invoke elsewhere (bids, orchestration)."""
    files = _files(data_dir)
    node = files.did
    grants = _read(paths)
    for path, found in grants:
        if found.aud != node:
            raise Mistake(f"{path}: grant {found.cid} is to {found.aud}, not to this node "
                          f"({node})")
    for _, found in grants:
        files.store.put_delegation(found)
    files.changed()
    _emit(as_json, {"held": [_described(found) for _, found in grants]},
          "\n".join(f"holding {found.cid}: {found.cmd} from {found.iss}" for _, found in grants))


def _read(paths: Sequence[str]) -> list[tuple[str, Delegation]]:
    found: list[tuple[str, Delegation]] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise Mistake(f"{path}: {exc.strerror or exc}") from None
        try:
            found.extend((path, Delegation.decode(token)) for token in read_tokens(data))
        except UcanError as exc:
            raise Mistake(f"{path}: not a delegation: {exc}") from None
    return found


@cap.command("list")
@DATA_DIR
@JSON
def list_command(data_dir: str | None, as_json: bool) -> None:
    """The node's anchors, the grants it holds, and the revocations it keeps."""
    files = _files(data_dir)
    node = files.did
    anchors, held = files.anchors(), files.held()
    try:
        revoked = [(r.cid, r.args.get("revoke"), r.iss) for r in files.store.revocations()]
    except UcanError as exc:
        raise Mistake(f"{files.store.directory}: {exc}") from None
    now = time.time()
    if as_json:
        _emit(True, {"node": node, "anchors": list(anchors),
                     "held": [{**_described(d), "expired": _expired(d, now)} for d in held],
                     "revocations": [{"revocation": str(cid), "revokes": str(target), "by": by}
                                     for cid, target, by in revoked]}, "")
        return
    lines = [f"node {node}", "anchors:" if anchors else "anchors: none"]
    lines += [f"  {did}" for did in anchors]
    lines += ["held grants:" if held else "held grants: none"]
    lines += [f"  {d.cid}  {d.cmd} from {d.iss} (sub {d.sub}), "
              f"{'EXPIRED' if _expired(d, now) else _expiry(d)}" for d in held]
    lines += ["revocations:" if revoked else "revocations: none"]
    lines += [f"  {target} (by {by})" for _, target, by in revoked[-REVOCATIONS_SHOWN:]]
    if len(revoked) > REVOCATIONS_SHOWN:
        lines += [f"  ... and {len(revoked) - REVOCATIONS_SHOWN} more (--json lists all)"]
    click.echo("\n".join(lines))


@cap.command("revoke")
@click.argument("cid", metavar="CID")
@DATA_DIR
@JSON
def revoke_command(cid: str, data_dir: str | None, as_json: bool) -> None:
    """Revoke delegation CID in the node's name. It counts in chains where the node
    issued that delegation or one above it; the node keeps it and, once (re)started,
    sends it to its peers."""
    files = _files(data_dir)
    try:
        target = CID.parse(cid)
    except MalformedToken as exc:
        raise Mistake(f"CID: {exc.message}") from None
    revocation = revoke(files.key(), target)
    files.store.put_revocation(revocation)
    files.changed()
    _emit(as_json, {"revocation": str(revocation.cid), "revokes": str(target),
                    "by": revocation.iss}, f"{revocation.cid} revokes {target}")


# -- shared --------------------------------------------------------------------------------


def _described(d: Delegation) -> dict[str, Any]:
    return {"cid": str(d.cid), "iss": d.iss, "aud": d.aud, "sub": d.sub, "cmd": d.cmd,
            "exp": d.exp}


def _expired(d: Delegation, now: float) -> bool:
    return d.exp is not None and d.exp <= now


def _expiry(d: Delegation) -> str:
    if d.exp is None:
        return "never expires"
    return "expires " + time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(d.exp))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(data)
    os.replace(partial, path)

