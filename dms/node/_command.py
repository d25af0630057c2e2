"""`dms node`: run a node from the shell, and ping one.

    dms node run --listen ws://0.0.0.0:7000 --keystore ~/.config/ucan/keys --state-dir ./state
    dms node ping ws://127.0.0.1:7000 --proof grant.ucan

The node's key is the keystore entry `--key-name` (default `node`, created on first
use, passphrase from $UCAN_PASSPHRASE or a prompt), so `ucan grant --as node` issues
grants in its name. Grants the node should hold are given with `--proof` (kept in the
state directory); `--anchor` adds roots of authority it accepts.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import trio

from dms.actor import Handle, RemoteError, RequestTimeout
from dms.net import NetError
from dms.node._behaviors import PING
from dms.node._node import load_node_key, open_node
from ucan import Delegation, MalformedToken, SigningKey, read_tokens


def _read_grants(paths: Sequence[str]) -> list[Delegation]:
    grants: list[Delegation] = []
    for path in paths:
        try:
            grants.extend(Delegation.decode(token) for token in read_tokens(Path(path).read_bytes()))
        except MalformedToken as exc:
            raise click.ClickException(f"{path}: not a delegation: {exc.message}") from None
    return grants


def _emit(as_json: bool, record: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(record) if as_json else text)
    sys.stdout.flush()


@click.group()
def node() -> None:
    """Run a node, or ping one."""


@node.command()
@click.option("--listen", default="ws://127.0.0.1:0", show_default=True,
              help="Address to listen on (port 0 picks a free one).")
@click.option("--bootstrap", multiple=True, metavar="ADDRESS", help="Peers to dial (repeat).")
@click.option("--anchor", multiple=True, metavar="DID",
              help="A root of authority to accept besides the node's own DID (repeat).")
@click.option("--proof", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A grant (.ucan or container text) the node holds (repeat).")
@click.option("--keystore", type=click.Path(file_okay=False),
              help="Keystore directory (default $UCAN_KEYSTORE or ~/.config/ucan/keys).")
@click.option("--key-name", default="node", show_default=True)
@click.option("--ephemeral", is_flag=True, help="Use a fresh key instead of the keystore.")
@click.option("--state-dir", type=click.Path(file_okay=False),
              help="Keep held grants and known revocations here across restarts.")
@click.option("--json", "as_json", is_flag=True, help="Print status lines as JSON.")
def run(listen: str, bootstrap: tuple[str, ...], anchor: tuple[str, ...],
        proof: tuple[str, ...], keystore: str | None, key_name: str, ephemeral: bool,
        state_dir: str | None, as_json: bool) -> None:
    """Run a node until interrupted (Ctrl-C or SIGTERM)."""
    from ucan.keystore import KeystoreError

    grants = _read_grants(proof)
    try:
        key = SigningKey.generate() if ephemeral else None
        trio.run(_run, key, keystore, key_name, listen, bootstrap, anchor, grants, state_dir,
                 as_json)
    except KeystoreError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


async def _run(key: SigningKey | None, keystore: str | None, key_name: str, listen: str,
               bootstrap: Sequence[str], anchors: Sequence[str], grants: list[Delegation],
               state_dir: str | None, as_json: bool) -> None:
    from ucan.keystore import keystore_directory

    async with open_node(key, keystore=None if key else keystore_directory(keystore),
                         key_name=key_name, listen=listen, bootstrap=bootstrap,
                         anchors=anchors, state_dir=state_dir) as running:
        running.add_proofs(*grants)
        _emit(as_json, {"event": "listening", "did": running.did, "address": running.address},
              f"node {running.did}\nlistening on {running.address}")
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        _emit(as_json, {"event": "stopped", "metrics": running.metrics()},
              f"stopping; {running.metrics().get('accepted', 0)} messages accepted")


@node.command()
@click.argument("address")
@click.option("--as", "key_name", metavar="NAME",
              help="Ping as this keystore key (default: a fresh key, which no grant names).")
@click.option("--keystore", type=click.Path(file_okay=False),
              help="Keystore directory (default $UCAN_KEYSTORE or ~/.config/ucan/keys).")
@click.option("--proof", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A grant proving /dms/node/ping on the target (repeat).")
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--timeout", default=5.0, show_default=True, type=float)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per ping.")
def ping(address: str, key_name: str | None, keystore: str | None, proof: tuple[str, ...],
         count: int, timeout: float, as_json: bool) -> None:
    """Ping the node at ADDRESS. Exit 0 when every ping is answered, 1 when refused
    (the UCAN failure is named), 2 when the node cannot be reached."""
    from ucan.keystore import KeystoreError

    grants = _read_grants(proof)
    try:
        key = (SigningKey.generate() if key_name is None
               else load_node_key(keystore, key_name))
    except KeystoreError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(trio.run(_ping, key, address, grants, count, timeout, as_json))


async def _ping(key: SigningKey, address: str, grants: list[Delegation], count: int,
                timeout: float, as_json: bool) -> int:
    try:
        async with open_node(key, bootstrap=[address]) as pinger:
            pinger.add_proofs(*grants)
            mesh = pinger.mesh
            assert mesh is not None  # open_node always gives its node a mesh
            with trio.move_on_after(timeout):
                await mesh.wait_connected()
            peers = mesh.connected_peers()
            if not peers:
                click.echo(f"unreachable: no handshake with {address} within {timeout:g} s",
                           err=True)
                return 2
            target = Handle(peers[0], peers[0], peers[0], "root")
            for n in range(1, count + 1):
                start = time.perf_counter()
                try:
                    await pinger.root.invoke(target, PING, {"echo": n}, timeout=timeout)
                except RemoteError as refused:
                    _emit(as_json, {"seq": n, "refused": refused.name,
                                    "message": refused.message},
                          f"{target.did}: refused: {refused.name}: {refused.message}")
                    return 1
                except (RequestTimeout, NetError) as lost:
                    click.echo(f"{target.did}: {lost}", err=True)
                    return 2
                rtt = (time.perf_counter() - start) * 1000
                _emit(as_json, {"seq": n, "peer": target.did, "rtt_ms": round(rtt, 3)},
                      f"{target.did}: pong {n} in {rtt:.2f} ms")
    except NetError as exc:
        click.echo(f"unreachable: {exc}", err=True)
        return 2
    return 0
