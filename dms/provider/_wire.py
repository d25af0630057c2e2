"""The deployment protocol between an orchestrator actor and the providers: commands and
the typed args and replies they carry (structured by `dms.actor`'s wire converter).

Every request names its deployment by id. The ensemble travels as the YAML text the
user gave, and every provider validates it again: it trusts the orchestrator's
authority, not its parsing.
"""

from __future__ import annotations

from typing import Any

import attrs

from dms.actor import Handle
from dms.ensemble import YamlLimits
from dms.executor import LogChunk, LogPosition
from dms.orchestrator.placement import Bid

from ._decline import Decline

DEPLOYMENT_TOPIC = "/nunet/deployment"
REQUEST = "/dms/deployment/request"
BID = "/dms/deployment/bid"
COMMIT = "/dms/deployment/commit"
REVERT = "/dms/deployment/revert"
ALLOCATE = "/dms/deployment/allocate"
NETWORK = "/dms/deployment/network"
SHUTDOWN = "/dms/deployment/shutdown"
ALLOCATIONS = "/dms/deployment/allocations"
MEASURE = "/dms/deployment/measure"
PROBE = "/dms/deployment/probe"
PROBE_BYTES = 256 * 1024
"""What one bandwidth probe carries: enough to time on a LAN, little for a node."""

ALLOCATION = "/dms/allocation"
ALLOCATION_START = "/dms/allocation/start"
ALLOCATION_STOP = "/dms/allocation/stop"
ALLOCATION_STATUS = "/dms/allocation/status"
ALLOCATION_LOGS = "/dms/allocation/logs"

MAX_ENSEMBLE_TEXT = 256 * 1024
"""Bytes of ensemble YAML a provider reads from a request."""
ENSEMBLE_VALUES_FREE = 20_000
"""Values any ensemble from the network may expand its YAML aliases to; past that, no
more than half its length in bytes (what the same text could spell out without
aliases). The reader's own limit is reached by a few hundred bytes of aliases, at a
second of parsing on every node that reads the request."""


def ensemble_limits(text: str) -> YamlLimits:
    """How far the YAML of an ensemble from the network may go: aliases can not make it
    cost more to read than a text of its size without them."""
    size = len(text.encode())
    return YamlLimits(max_bytes=MAX_ENSEMBLE_TEXT,
                      max_values=max(ENSEMBLE_VALUES_FREE, size // 2 + 1))


@attrs.frozen
class BidRequest:
    """Asks providers to bid; they answer `BID` to `reply_to` (the orchestrator actor,
    which must be the request's signer: a request cannot point bids at a third party)."""

    deployment: str
    ensemble: str
    reply_to: Handle


MAX_RTTS = 256
"""Round-trip times a bid reports (to the providers it is linked with) at most."""
MAX_SUBNETS = 256
"""Subnets in use a bid reports at most (one per ensemble network hosted there)."""


@attrs.frozen
class BidAnswer:
    """A provider's answer: a bid for the nodes it can host, a decline for the others,
    and its measured round-trip times (ms) to the peers it is linked with, for edge
    constraints. `network`: it can host the ensemble network (namespaces, TUNs), and
    `subnets` are the 10/8 subnets of the ensembles it hosts now, which a new plan
    must avoid."""

    deployment: str
    bid: Bid | None = None
    decline: Decline | None = None
    rtt_ms: dict[str, float] = attrs.Factory(dict)
    network: bool = False
    subnets: tuple[str, ...] = ()


@attrs.frozen
class MeasureOrder:
    """Measure the bandwidth from this provider to each of `to` (other bidders), for an
    edge constraint that asks for it: one bounded transfer each."""

    deployment: str
    to: tuple[Handle, ...]


@attrs.frozen
class Measured:
    bits_per_second: dict[str, float]  # by the measured provider's peer


@attrs.frozen
class Probe:
    """One transfer of a bandwidth measurement, for `requester`'s `deployment`: the
    measured provider takes a loaded one only if it bid on that deployment to that
    requester, lately (so no one can aim measurements at a bystander)."""

    payload: bytes
    deployment: str = ""
    requester: str = ""


@attrs.frozen
class CommitOrder:
    """Reserve what `nodes` of the ensemble need, under a lease of `lease` seconds."""

    deployment: str
    ensemble: str
    nodes: tuple[str, ...]
    lease: float = 30.0


@attrs.frozen
class Committed:
    reservations: tuple[str, ...]


@attrs.frozen
class DeploymentRef:
    """A deployment, or only some of its ensemble nodes (`nodes`; empty: all of them)."""

    deployment: str
    nodes: tuple[str, ...] = ()


@attrs.frozen
class AllocateOrder:
    """Turn the reservations of `nodes` into allocation actors (not started yet).
    `heartbeat`: if the orchestrator asks after none of them for this long, the
    provider stops them and releases what they hold (a vanished orchestrator leaks
    nothing). `network`: the ensemble network's order (`dms.network.order_to_wire`),
    the same for every provider of the deployment; None: no private network."""

    deployment: str
    ensemble: str
    nodes: tuple[str, ...]
    heartbeat: float = 60.0
    network: dict[str, Any] | None = None


@attrs.frozen
class NetworkUpdate:
    """A deployment's new network order (`order_to_wire`) for a provider that keeps
    its allocations while a redeploy moved others: its pump sends their packets, and
    admits theirs, from where they run now. Same subnet and addresses, unless the
    redeploy renumbered the ensemble (a new provider used an overlapping subnet): then
    the allocations here take their new addresses, and their names follow."""

    deployment: str
    network: dict[str, Any]


@attrs.frozen
class AllocationGrant:
    """One allocation actor and the delegation (its envelope) that lets the
    orchestrator control it: `/dms/allocation` over the allocation actor's own id."""

    allocation: str
    node: str
    actor: Handle
    proof: bytes


@attrs.frozen
class Allocated:
    allocations: tuple[AllocationGrant, ...]


@attrs.frozen
class HostedAllocations:
    """The answer to ALLOCATIONS, which the provider node's root actor serves (its
    address outlives provider restarts): the provider actor now, and the deployment's
    allocation actors here now, each with a fresh delegation. After a provider restart
    both are new actors, so an orchestrator finds them again with this."""

    provider: Handle
    allocations: tuple[AllocationGrant, ...]


@attrs.frozen
class AllocationEvent:
    """One supervision event of an allocation, numbered from 1 on its provider."""

    number: int
    kind: str
    at: float  # Unix seconds
    detail: str = ""
    exit_code: int | None = None
    logs_tail: str = ""


@attrs.frozen
class StatusQuery:
    after: int = 0  # the last event number the asker has


@attrs.frozen
class AllocationReport:
    allocation: str
    phase: str | None
    health: str | None
    restarts: int
    events: tuple[AllocationEvent, ...]
    ended: bool  # completed, exited for good or stopped: nothing more will happen


MAX_LOG_LINES = 10_000
"""Lines a logs query may ask the tail of."""
MAX_LOG_REPLY = 256 * 1024
"""Bytes of output one logs reply carries at most, both streams together."""


@attrs.frozen
class LogsQuery:
    """An allocation's output: each stream asked for from its position on (`*_after`,
    the `next` of the last reply), or without one its last `tail` lines."""

    tail: int = 200
    stdout: bool = True
    stderr: bool = True
    stdout_after: LogPosition | None = None
    stderr_after: LogPosition | None = None


@attrs.frozen
class LogsReply:
    """The streams asked for (None: not asked for)."""

    stdout: LogChunk | None = None
    stderr: LogChunk | None = None
