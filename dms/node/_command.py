"""`dms node`: run a node from the shell, and ping one.

    dms node run --listen tcp://0.0.0.0:7000 --keystore ~/.config/ucan/keys --state-dir ./state
    dms node run --provide cpu=2,ram=4Gi,disk=20Gi --anchor did:key:z...   # also a provider
    dms node run --data-dir ~/node --location EU/DE/Berlin   # as `dms init` made it
    dms node ping tcp://127.0.0.1:7000 --as me --proof grant.ucan

With `--data-dir D` the settings come from `D/config.yaml` (`dms.node._config`; a flag
given overrides its setting), the keystore is `D/keys` and the state directory
`D/state`, where the node also finds the anchors `dms cap anchor` keeps.
`--location` is told in the provider's bids (ensembles' location constraints match
it); `--keep-workloads` leaves allocations running when the node stops, for the next
start to re-adopt.

The node's key is the keystore entry `--key-name` (default `node`, created on first
use and announced on stderr, passphrase from $UCAN_PASSPHRASE or a prompt), so `ucan
grant --as node` issues grants in its name. `ping --as NAME` opens an existing key and
never creates one. Grants the node should hold are given with `--proof` (kept in the
state directory); `--anchor` adds roots of authority it accepts.

Every node runs the deployment service (it orchestrates once it holds a grant of
`/dms/deployment`); with `--provide` it also offers part of this machine to deployments.
With `--json` the status lines are JSON: `listening` (address, DID, what it offers),
`peers` (how many peers it is linked with, each time that changes) and `stopped`; and
the node's log records go to stderr as JSON lines (text lines without it).
`--exit-with-stdin` ties the node's life to the process that started it: it stops when
its stdin closes, which the kernel does when that process ends in any way.

Every mistake a user can make is one line on stderr and an exit status, never a
traceback: 2 for a usage mistake or an unreachable node (`EXIT_USAGE`), 1 when a ping
is refused, 130 when interrupted before the node is running or during a ping. Once a
node runs, Ctrl-C or SIGTERM stops it cleanly with status 0.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import click
import trio
from click.core import ParameterSource

from dms._nursery import sole_failure
from dms.actor import Handle, RemoteError, RequestTimeout
from dms.deployment import DeploymentSettings
from dms.ensemble._requirements import Location
from dms.ensemble._units import readable_size
from dms.net import NetError
from dms.net._address import parse_node_address
from dms.network import DnsUpstream, InvalidPlan, parse_upstream
from dms.node._anchors import InvalidAnchors
from dms.node._behaviors import PING
from dms.node._config import (
    DataLayout,
    InvalidNodeConfig,
    describe_location,
    parse_location,
    read_node_config,
)
from dms.node._logging import node_logging
from dms.node._node import Node, load_node_key, open_node
from dms.node._offer import InvalidOffer, parse_offer, parse_ports
from dms.node._state_lock import StateDirError
from dms.provider import NetworkUnavailable, OnboardingLimits, ProviderConfig
from dms.store import StoreError
from dms.workload import ExecutorKind
from ucan import Delegation, MalformedToken, SigningKey, public_key_from_did, read_tokens
from ucan.keystore import Keystore, KeystoreError, keystore_directory, open_key

EXIT_REFUSED = 1
EXIT_USAGE = 2
"""A mistake in the command line or its environment, or a node that cannot be reached."""
EXIT_INTERRUPTED = 130
"""Ctrl-C before the node was running (or during a ping): 128 + SIGINT, as shells do."""


class Mistake(click.ClickException):
    """A usage mistake, said on one line (``Error: ...``) with `EXIT_USAGE`."""

    exit_code = EXIT_USAGE


# -- checked before anything starts ----------------------------------------------------------


def check_node_address(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """For node address options and arguments (one, several, or none given): tcp:// or
    ws://, see `dms.net._address`; `--listen` takes no path."""
    listening = isinstance(param, click.Option) and param.name == "listen"
    for address in value if isinstance(value, tuple) else [] if value is None else [value]:
        try:
            parse_node_address(address, listening=listening)
        except NetError as exc:
            raise Mistake(f"{_label(param)}: {exc}") from None
    return value


def _label(param: click.Parameter) -> str:
    """How the user wrote it: `--listen` for an option, `ADDRESS` for an argument."""
    return param.opts[0] if isinstance(param, click.Option) else param.human_readable_name


def _did_keys(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    for did in value:
        try:
            public_key_from_did(did)
        except MalformedToken as exc:
            raise Mistake(f"--anchor: {exc.message} (an anchor is a did:key:z... DID)") from None
    return value


def check_positive(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """For --count and --timeout (an int stays an int; None: not given)."""
    if value is not None and not value > 0:
        raise Mistake(f"--{param.name} must be more than 0, got {value:g}")
    if value is not None and math.isinf(value):  # it would reach the node's wire format
        raise Mistake(f"--{param.name} must be a finite number of seconds, got {value:g}")
    return value


def _offer(ctx: click.Context, param: click.Parameter,
           value: str | None) -> OnboardingLimits | None:
    if value is None:
        return None
    try:
        return parse_offer(value)
    except InvalidOffer as exc:
        raise Mistake(f"--provide: {exc}") from None


def _ports(ctx: click.Context, param: click.Parameter, value: str | None) -> frozenset[int]:
    try:
        return frozenset() if value is None else parse_ports(value)
    except InvalidOffer as exc:
        raise Mistake(f"--ports: {exc}") from None


def _dns_upstream(ctx: click.Context, param: click.Parameter,
                  value: str | None) -> DnsUpstream | None:
    try:
        return None if value is None else parse_upstream(value)
    except InvalidPlan as exc:
        raise Mistake(f"--network-dns-upstream: {exc.problem}") from None


def _price(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise Mistake(f"--price must be a number >= 0, got {value:g}")
    return value


def _ended_kept(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise Mistake(f"--ended-kept must be a whole number of deployments >= 1, got {value}")
    return value


def read_grants(paths: Sequence[str]) -> list[Delegation]:
    grants: list[Delegation] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise Mistake(f"--proof {path}: {exc.strerror or exc}") from None
        try:
            grants.extend(Delegation.decode(token) for token in read_tokens(data))
        except MalformedToken as exc:
            raise Mistake(f"--proof {path}: not a delegation: {exc.message}") from None
    return grants


def _node_key(keystore: str | None, name: str) -> SigningKey:
    """`name` from the keystore, created on first use (documented) and said so."""
    directory = keystore_directory(keystore)
    created = not Keystore(directory).path_of(name).exists()
    key = load_node_key(directory, name)
    if created:
        click.echo(f"created node key {name!r} ({key.did}) in {directory}", err=True)
    return key


# -- failures while running -------------------------------------------------------------------


def run_trio(main: Callable[..., Awaitable[int]], *args: Any) -> int:
    """`trio.run(main, *args)` with the user's mistakes as one line and an exit status."""
    try:
        return trio.run(main, *args)
    except BaseException as raised:
        failure = sole_failure(raised)
        if isinstance(failure, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        if isinstance(failure, (NetError, StateDirError, InvalidAnchors, NetworkUnavailable)):
            raise Mistake(str(failure)) from None
        if isinstance(failure, StoreError):  # the state directory's database
            raise Mistake(f"the node's state cannot be used: {failure}") from None
        raise


def load_key_or_exit(load: Callable[[], SigningKey]) -> SigningKey:
    """`load()`, which may prompt for a passphrase, outside trio: a keystore failure is a
    `Mistake`, Ctrl-C at the prompt is `EXIT_INTERRUPTED`."""
    try:
        return load()
    except KeystoreError as exc:
        raise Mistake(str(exc)) from None
    except (KeyboardInterrupt, EOFError):  # at the passphrase prompt
        click.echo("interrupted", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None


def _emit(as_json: bool, record: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(record) if as_json else text)
    sys.stdout.flush()


# -- the commands -----------------------------------------------------------------------------


@click.group()
def node() -> None:
    """Run a node; ping one, or ask what it is, sees and offers."""


def _location(ctx: click.Context, param: click.Parameter, value: str | None) -> Location | None:
    if value is None:
        return None
    try:
        return parse_location(value)
    except ValueError as exc:
        raise Mistake(f"--location: {exc}") from None


@node.command()
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="A data directory made by `dms init`: its config.yaml gives the settings "
                   "below (a flag overrides its setting), its keys/ the keystore, its state/ "
                   "the state directory.")
@click.option("--listen", default="tcp://127.0.0.1:0", show_default=True, callback=check_node_address,
              help="Address to listen on: tcp://HOST:PORT, or ws://HOST:PORT for proxies "
                   "and browsers (port 0 picks a free one).")
@click.option("--bootstrap", multiple=True, metavar="ADDRESS", callback=check_node_address,
              help="Peers to dial, tcp:// or ws:// (repeat).")
@click.option("--anchor", multiple=True, metavar="DID", callback=_did_keys,
              help="A root of authority to accept besides the node's own DID and the anchors "
                   "kept in the state directory (repeat).")
@click.option("--proof", multiple=True, metavar="FILE",
              help="A grant (.ucan or container text) the node holds (repeat).")
@click.option("--keystore", type=click.Path(file_okay=False),
              help="Keystore directory (default DATA_DIR/keys, else $UCAN_KEYSTORE or "
                   "~/.config/ucan/keys).")
@click.option("--key-name", default="node", show_default=True,
              help="The node's key in the keystore (created on first use).")
@click.option("--ephemeral", is_flag=True, help="Use a fresh key instead of the keystore.")
@click.option("--state-dir", type=click.Path(file_okay=False),
              help="Keep held grants, anchors and known revocations here across restarts "
                   "(one node at a time; default DATA_DIR/state).")
@click.option("--provide", "offer", metavar="OFFER", callback=_offer,
              help="Also be a provider, offering at most this of the machine: "
                   "cpu=2,ram=4Gi,disk=20Gi,gpus=0 (a value may be a share: cpu=50%), "
                   "or `all`.")
@click.option("--executor", "executors", multiple=True, default=("process",),
              show_default=True, type=click.Choice([kind.value for kind in ExecutorKind]),
              help="An executor to offer with --provide (repeat).")
@click.option("--price", default=0.0, show_default=True, type=float, callback=_price,
              help="The price a provider bids.")
@click.option("--ports", "public_ports", metavar="PORTS", callback=_ports,
              help="Host ports a provider's workloads may publish (an ensemble's "
                   "`ports`): 8000-8999,9100 (default: none).")
@click.option("--location", metavar="CONTINENT/COUNTRY/CITY", callback=_location,
              help="Where this provider is, told in its bids: ensembles' location "
                   "constraints match it (e.g. EU/DE/Berlin; later parts may be left out).")
@click.option("--keep-workloads", is_flag=True,
              help="When the node stops, leave its workloads running; the next start "
                   "re-adopts them (needs a state directory).")
@click.option("--network", is_flag=True,
              help="Give a provider's process allocations the ensemble network: each in "
                   "a namespace with a private 10/8 address and <name>.internal names, "
                   "packets to other providers over the node's links (needs root, "
                   "/dev/net/tun and iproute2).")
@click.option("--network-dns-upstream", "dns_upstream", metavar="IP[:PORT]",
              callback=_dns_upstream,
              help="With --network: where the ensemble resolvers forward names outside "
                   ".internal (default: refused).")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="Where a provider's workloads keep their files (default DATA_DIR/work, "
                   "STATE_DIR/work, or a temporary directory removed when the node stops).")
@click.option("--ended-kept", type=int, metavar="N", callback=_ended_kept,
              help="Ended (completed or failed) deployments this node keeps on record, "
                   "the newest; older ones are pruned (default 1000).")
@click.option("--exit-with-stdin", is_flag=True,
              help="Stop when stdin closes (the node ends with the process that started it).")
@click.option("--json", "as_json", is_flag=True,
              help="Print status lines as JSON, and log records as JSON lines on stderr.")
@click.pass_context
def run(ctx: click.Context, data_dir: str | None, listen: str, bootstrap: tuple[str, ...],
        anchor: tuple[str, ...], proof: tuple[str, ...], keystore: str | None, key_name: str,
        ephemeral: bool, state_dir: str | None, offer: OnboardingLimits | None,
        executors: tuple[str, ...], price: float, public_ports: frozenset[int],
        location: Location | None,
        keep_workloads: bool, network: bool, dns_upstream: DnsUpstream | None,
        work_dir: str | None, ended_kept: int | None, exit_with_stdin: bool,
        as_json: bool) -> None:
    """Run a node until interrupted (Ctrl-C or SIGTERM: exit 0). Exit 2 on a usage
    mistake (bad address, anchor, proof, offer or config, missing keystore, port in
    use, state directory held by another node, --network where the host cannot run it),
    130 when interrupted while starting."""
    if data_dir is not None:
        layout = DataLayout(Path(data_dir).expanduser())
        try:
            config = read_node_config(layout.config)
        except InvalidNodeConfig as exc:
            raise Mistake(f"config {exc}") from None
        if config is None:
            raise Mistake(f"--data-dir {data_dir}: no {layout.config.name} there (make one "
                          f"with `dms init --data-dir {data_dir}`)")

        def given(name: str) -> bool:
            return ctx.get_parameter_source(name) is not ParameterSource.DEFAULT

        listen = listen if given("listen") else config.listen
        bootstrap = bootstrap if given("bootstrap") else config.bootstrap
        offer = offer if given("offer") else config.offer
        executors = executors if given("executors") else config.executors
        price = price if given("price") else config.price
        public_ports = public_ports if given("public_ports") else config.public_ports
        location = location if location is not None else config.location
        keep_workloads = keep_workloads or config.keep_workloads
        keystore = keystore if keystore is not None else str(layout.keystore)
        state_dir = state_dir if state_dir is not None else str(layout.state)
        work_dir = work_dir if work_dir is not None else str(layout.work(config))
        ended_kept = ended_kept if ended_kept is not None else config.ended_kept
    if network and offer is None:
        raise Mistake("--network: only a provider hosts the ensemble network (add --provide)")
    if dns_upstream is not None and not network:
        raise Mistake("--network-dns-upstream: forwards for the ensemble network (add --network)")
    if keep_workloads and state_dir is None:
        raise Mistake("--keep-workloads needs a state directory (--state-dir or --data-dir): "
                      "the next start finds the workloads there")
    deployments = None if ended_kept is None else DeploymentSettings(ended_kept=ended_kept)
    grants = read_grants(proof)
    key = SigningKey.generate() if ephemeral else load_key_or_exit(lambda: _node_key(keystore, key_name))
    with contextlib.ExitStack() as stack:
        provider = None
        if offer is not None:
            if work_dir is None:
                work_dir = (os.path.join(state_dir, "work") if state_dir is not None else
                            stack.enter_context(tempfile.TemporaryDirectory(prefix="dms-work-")))
            provider = ProviderConfig(work_dir, tuple(ExecutorKind(e) for e in executors),
                                      limits=offer, price=price, public_ports=public_ports,
                                      location=location or Location(),
                                      keep_workloads=keep_workloads, network=network,
                                      network_dns_upstream=dns_upstream)
        stack.enter_context(node_logging(as_json))
        status = run_trio(_run, key, listen, bootstrap, anchor, grants, state_dir, provider,
                          deployments, exit_with_stdin, as_json)
    raise SystemExit(status)


async def _run(key: SigningKey, listen: str, bootstrap: Sequence[str], anchors: Sequence[str],
               grants: list[Delegation], state_dir: str | None,
               provider: ProviderConfig | None, deployments: DeploymentSettings | None,
               exit_with_stdin: bool, as_json: bool) -> int:
    async with open_node(key, listen=listen, bootstrap=bootstrap, anchors=anchors,
                         state_dir=state_dir, provider=provider,
                         deployments=deployments) as running:
        running.add_proofs(*grants)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            offers = _offers(running)
            _emit(as_json, {"event": "listening", "did": running.did,
                            "address": running.address, "offers": offers},
                  f"node {running.did}\nlistening on {running.address}" + (
                      "" if offers is None else f"\noffering {_describe_offer(offers)}"))
            async with trio.open_nursery() as watching:
                watching.start_soon(_report_peers, running, as_json)
                watching.start_soon(_cancel_on_signal, signals, watching.cancel_scope)
                if exit_with_stdin:
                    watching.start_soon(_cancel_when_stdin_closes, watching.cancel_scope)
        _emit(as_json, {"event": "stopped", "metrics": running.metrics()},
              f"stopping; messages accepted: {running.metrics().get('accepted', 0)}")
    return 0


def _offers(running: Node) -> dict[str, Any] | None:
    if running.provider is None:
        return None
    offered = running.provider.book.offered
    return {"millicores": offered.millicores, "ram": offered.ram, "disk": offered.disk,
            "gpus": len(offered.gpus), "executors": sorted(offered.executor_names),
            "location": describe_location(offered.location), "price": running.provider.price}


def _describe_offer(offers: dict[str, Any]) -> str:
    return (f"cpu {offers['millicores'] / 1000:g}, ram {readable_size(offers['ram'])}, "
            f"disk {readable_size(offers['disk'])}, {offers['gpus']} gpus, executors "
            f"{', '.join(offers['executors']) or 'none'}"
            + (f", in {offers['location']}" if offers["location"] else ""))


PEERS_CHECK = 0.25
"""Seconds between looks at the node's link count (reported when it changes)."""


async def _report_peers(running: Node, as_json: bool) -> None:
    reported = 0
    while True:
        linked = len(running.mesh.connected_peers())
        if linked != reported:
            reported = linked
            _emit(as_json, {"event": "peers", "connected": linked},
                  f"linked with {linked} peer{'s' * (linked != 1)}")
        await trio.sleep(PEERS_CHECK)


async def _cancel_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    async for _ in signals:
        break
    scope.cancel()


async def _cancel_when_stdin_closes(scope: trio.CancelScope) -> None:
    """Read (and ignore) stdin until it ends: the end is the signal to stop."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stdin:
        while await stdin.receive_some(4096):
            pass
    scope.cancel()


@node.command()
@click.argument("address", callback=check_node_address)
@click.option("--as", "key_name", metavar="NAME",
              help="Ping as this existing keystore key (default: a fresh key, which no "
                   "grant names).")
@click.option("--keystore", type=click.Path(file_okay=False),
              help="Keystore directory (default $UCAN_KEYSTORE or ~/.config/ucan/keys).")
@click.option("--proof", multiple=True, metavar="FILE",
              help="A grant proving /dms/node/ping on the target (repeat).")
@click.option("--count", default=1, show_default=True, type=int, callback=check_positive)
@click.option("--timeout", default=5.0, show_default=True, type=float, callback=check_positive,
              help="Seconds to wait for the connection, and for each pong.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per ping.")
def ping(address: str, key_name: str | None, keystore: str | None, proof: tuple[str, ...],
         count: int, timeout: float, as_json: bool) -> None:
    """Ping the node at ADDRESS. Exit 0 when every ping is answered, 1 when refused
    (the UCAN failure is named), 2 when the node cannot be reached (the reason is
    named) or on a usage mistake, 130 when interrupted."""
    grants = read_grants(proof)
    key = (SigningKey.generate() if key_name is None
           else load_key_or_exit(lambda: open_key(keystore_directory(keystore), key_name)))
    if grants and not any(grant.aud == key.did for grant in grants):
        audiences = ", ".join(sorted({grant.aud for grant in grants}))
        raise Mistake(f"--proof: no grant is delegated to you ({key.did}); they are to "
                      f"{audiences} (pass --as the key they were granted to)")
    raise SystemExit(run_trio(_ping, key, address, grants, count, timeout, as_json))


async def _ping(key: SigningKey, address: str, grants: list[Delegation], count: int,
                timeout: float, as_json: bool) -> int:
    async with open_node(key, bootstrap=[address]) as pinger:
        pinger.add_proofs(*grants)
        mesh = pinger.mesh
        assert mesh is not None  # open_node always gives its node a mesh
        with trio.move_on_after(timeout):
            await mesh.wait_connected()
        peers = mesh.connected_peers()
        if not peers:
            failure = mesh.dial_failure(address)
            click.echo(f"unreachable: {failure}" if failure is not None else
                       f"unreachable: no handshake with {address} within {timeout:g} s",
                       err=True)
            return EXIT_USAGE
        target = Handle(peers[0], peers[0], peers[0], "root")
        for n in range(1, count + 1):
            start = time.perf_counter()
            try:
                await pinger.root.invoke(target, PING, {"echo": n}, timeout=timeout)
            except RemoteError as refused:
                _emit(as_json, {"seq": n, "refused": refused.name, "message": refused.message},
                      f"{target.did}: refused: {refused.name}: {refused.message}")
                return EXIT_REFUSED
            except (RequestTimeout, NetError) as lost:
                click.echo(f"{target.did}: {lost}", err=True)
                return EXIT_USAGE
            rtt = (time.perf_counter() - start) * 1000
            _emit(as_json, {"seq": n, "peer": target.did, "rtt_ms": round(rtt, 3)},
                  f"{target.did}: pong {n} in {rtt:.2f} ms")
    return 0
