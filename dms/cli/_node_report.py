"""`dms node status`, `dms node peers`, `dms node resources` (also `dms peers`,
`dms resources`): what a node is, sees and offers, asked over the actor protocol like
any other call (`/dms/node/info`, `/dms/node/peers`, `/dms/node/resources`), so the
caller needs a grant of them, or of `/dms/node`, from the node or one of its anchors.

    dms node status --data-dir ~/node       # your own node, as `dms init` made it
    dms peers --json                        # the node the client config names
    dms resources --node tcp://10.1.2.3:7000 --as me --proof grant.ucan

Exit 0 answered, 1 refused (the missing grant is named), 2 a usage mistake or an
unreachable node. What comes from the node is printed escaped: a node's answer cannot
drive the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import attrs
import click

from dms.actor import unstructure_result
from dms.ensemble._units import readable_size
from dms.node._behaviors import INFO, PEERS, RESOURCES, Amounts, NodeInfo, NodeResources
from dms.node._config import describe_location

from ._display import Names, printable
from ._errors import run_async
from ._session import Target, open_session
from ._target import client_options

ResolveTarget = Callable[[], Target]
MAX_PEERS_SHOWN = 1000


@attrs.frozen
class PeerView:
    peer: str
    address: str | None = None
    connected: bool = False
    rtt_ms: float | None = None
    seen_ago: float | None = None


@attrs.frozen
class _PeerTable:
    peers: tuple[PeerView, ...]


def _emit_json(record: Any) -> None:
    click.echo(json.dumps(record))
    sys.stdout.flush()


def _lines(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {printable(value)}" for label, value in rows)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + \
        [f"{minutes}m"] * bool(minutes) + [f"{secs}s"]
    return " ".join(parts[:2]) if days or hours else " ".join(parts)


# -- status --------------------------------------------------------------------------------


@click.command("status")
@client_options
@click.option("--json", "as_json", is_flag=True, help="Print what the node says as JSON.")
def node_status(target: ResolveTarget, as_json: bool) -> None:
    """What the node is: DID, address, version, uptime, roles, deployments, peers."""
    raise SystemExit(run_async(_status, target(), as_json))


async def _status(target: Target, as_json: bool) -> int:
    async with open_session(target) as session:
        info = await session.call(INFO, None, NodeInfo)
    if as_json:
        _emit_json(unstructure_result(info))
        return 0
    name = Names(target.names)
    click.echo(_lines([
        ("node", info.did),
        ("address", info.address or target.address),
        ("version", info.version),
        ("uptime", _duration(info.uptime)),
        ("roles", ", ".join(info.roles) or "none (no market grant, not a provider)"),
        *[("market", name(market)) for market in info.markets],
        ("deployments", f"{info.deployments} not finished"),
        ("peers", f"{info.peers} linked"),
    ]))
    return 0


# -- peers ---------------------------------------------------------------------------------


@click.command("peers")
@client_options
@click.option("--json", "as_json", is_flag=True, help="Print the peer table as JSON.")
def peers(target: ResolveTarget, as_json: bool) -> None:
    """The node's peers: each one's address, whether linked now, its RTT."""
    raise SystemExit(run_async(_peers, target(), as_json))


async def _peers(target: Target, as_json: bool) -> int:
    async with open_session(target) as session:
        table = await session.call(PEERS, None, _PeerTable)
    shown = table.peers[:MAX_PEERS_SHOWN]
    if as_json:
        _emit_json({"peers": [unstructure_result(peer) for peer in shown]})
        return 0
    if not shown:
        click.echo("no peers")
        return 0
    name = Names(target.names)
    rows = [("PEER", "ADDRESS", "LINKED", "RTT", "SEEN")] + [
        (name(p.peer), p.address or "-", "yes" if p.connected else "no",
         "-" if p.rtt_ms is None else f"{p.rtt_ms:.2f} ms",
         "-" if p.seen_ago is None else f"{_duration(p.seen_ago)} ago")
        for p in shown]
    widths = [max(len(printable(row[i])) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(f"{printable(cell):<{w}}" for cell, w in zip(row, widths,
                                                                        strict=True)).rstrip())
    return 0


# -- resources -----------------------------------------------------------------------------


@click.command("resources")
@client_options
@click.option("--json", "as_json", is_flag=True, help="Print what the node offers as JSON.")
def resources(target: ResolveTarget, as_json: bool) -> None:
    """What the node offers to deployments: capacity, reserved, free, the executors it
    really opened, location, price."""
    raise SystemExit(run_async(_resources, target(), as_json))


async def _resources(target: Target, as_json: bool) -> int:
    async with open_session(target) as session:
        offer = await session.call(RESOURCES, None, NodeResources)
    if as_json:
        _emit_json(unstructure_result(offer))
        return 0
    if not offer.provider:
        click.echo("not a provider: this node offers nothing (give it `provide:` in its "
                   "config, or --provide)")
        return 0
    rows = [("", "CPU", "RAM", "DISK", "GPUS")] + [
        (label, *_amounts(amounts)) for label, amounts in
        (("offered", offer.offered), ("reserved", offer.reserved), ("free", offer.free))]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths,
                                                               strict=True)).rstrip())
    click.echo(_lines([
        ("executors", ", ".join(offer.executors) or "none opened"),
        ("location", describe_location(offer.location) or "unknown"),
        ("price", f"{offer.price:g}"),
        ("reservations", str(offer.reservations)),
    ]))
    return 0


def _amounts(amounts: Amounts | None) -> tuple[str, str, str, str]:
    if amounts is None:
        return ("-", "-", "-", "-")
    return (f"{amounts.millicores / 1000:g}", readable_size(amounts.ram),
            readable_size(amounts.disk), str(amounts.gpus))
