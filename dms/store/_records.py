"""The records a node keeps: deployments and their events on the orchestrator side,
reservations and allocations on the provider side.

They are frozen and validated when built (`InvalidRecord` names the field), so what
is written is always something the code could have produced, and a row that decodes
is a record the rest of the code can trust. Times are Unix seconds (`time.time()`),
not trio's clock: they must mean the same thing after a restart.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

import attrs

from dms.store._errors import InvalidRecord
from dms.store._states import AllocationState, DeploymentPhase, ReservationState
from dms.workload import ExecutorKind

MAX_NAME = 256
_DID = re.compile(r"did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,500}")


def _refuse(instance: object, attribute: attrs.Attribute[Any], problem: str) -> InvalidRecord:
    return InvalidRecord(type(instance).__name__, attribute.name, problem)


def _uuid(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    try:
        canonical = isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        canonical = False
    if not canonical:
        raise _refuse(instance, attribute, f"{value!r} is not a UUID in canonical form")


def _did(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _DID.fullmatch(value):
        raise _refuse(instance, attribute, f"{value!r} is not a DID")


def _check_name(instance: object, attribute: attrs.Attribute[Any], value: object,
                what: str = "") -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise _refuse(instance, attribute,
                      f"{what}{value!r} is not a name (1 to {MAX_NAME} characters)")
    _check_text(instance, attribute, value)


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_name(instance, attribute, value)


def _check_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _refuse(instance, attribute, f"expected text, got {type(value).__name__}")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise _refuse(instance, attribute, f"not valid UTF-8 text at character {exc.start}") from None


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_text(instance, attribute, value)


def _time(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(instance, attribute, f"{value!r} is not a finite number of seconds")


def _optional_time(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _time(instance, attribute, value)


def _optional_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _time(instance, attribute, value)
        if value < 0:  # type: ignore[operator]
            raise _refuse(instance, attribute, f"{value!r} is negative")


def _positive_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _time(instance, attribute, value)
    if value <= 0:  # type: ignore[operator]
        raise _refuse(instance, attribute, f"{value!r} is not a positive number of seconds")


def _seq(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _refuse(instance, attribute, f"{value!r} is not a seq (1 or more)")


def _member(kind: type) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise _refuse(instance, attribute, f"expected a {kind.__name__}, got {value!r}")
    return check


def _assignment(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise _refuse(instance, attribute, "expected a mapping of ensemble node to provider")
    for node, provider in value.items():
        _check_name(instance, attribute, node, "ensemble node ")
        if not isinstance(provider, str) or not _DID.fullmatch(provider):
            raise _refuse(instance, attribute, f"node {node!r}: provider {provider!r} is not a DID")


def _commits(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise _refuse(instance, attribute, "expected a mapping of provider to provider actor")
    for provider, actor in value.items():
        for what, did in (("provider", provider), ("provider actor", actor)):
            if not isinstance(did, str) or not _DID.fullmatch(did):
                raise _refuse(instance, attribute, f"{what} {did!r} is not a DID")


def _allocations(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise _refuse(instance, attribute, "expected a mapping of allocation name to allocation")
    for name, allocation in value.items():
        _check_name(instance, attribute, name, "allocation ")
        if not isinstance(allocation, DeploymentAllocation):
            raise _refuse(instance, attribute,
                          f"allocation {name!r}: expected a DeploymentAllocation")


def _json_object(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _refuse(instance, attribute, "expected a JSON object (a dict with text keys)")


def _text_mapping(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(item, str) for key, item in value.items()):
        raise _refuse(instance, attribute, "expected a mapping of text to text")


def _amount(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(instance, attribute, f"{value!r} is not a whole number, 0 or more")


def _devices(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(
            isinstance(device, str) and device for device in value):
        raise _refuse(instance, attribute, "expected a tuple of device ids")
    if len(set(value)) != len(value):
        raise _refuse(instance, attribute, f"{value!r} names a device twice")


def _ports(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise _refuse(instance, attribute, "expected a tuple of port numbers")
    for port in value:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _refuse(instance, attribute, f"{port!r} is not a port number (1 to 65535)")
    if len(set(value)) != len(value):
        raise _refuse(instance, attribute, f"{value!r} names a port twice")


@attrs.frozen
class DeploymentAllocation:
    """One ensemble allocation of a deployment, as its orchestrator knows it."""

    provider: str = attrs.field(validator=_did)  # the provider node's peer DID
    actor: str = attrs.field(default="", validator=_text)  # the allocation actor's ID, once it exists
    state: AllocationState = attrs.field(default=AllocationState.PENDING,
                                         validator=_member(AllocationState))
    inbox: str = attrs.field(default="", validator=_text)  # the allocation actor's inbox
    provider_actor: str = attrs.field(default="", validator=_text)  # who took the commit


@attrs.frozen
class DeploymentRecord:
    """A deployment as its orchestrator node keeps it: enough to report it, resume
    supervising it and shut it down after a restart. `ensemble` is the YAML text as
    the user gave it (what they wrote is what `status` shows); `deadline` is a Unix
    time, `duration` seconds of running."""

    id: str = attrs.field(validator=_uuid)
    owner: str = attrs.field(validator=_did)  # the DID that created it
    ensemble: str = attrs.field(validator=_text)
    created_at: float = attrs.field(validator=_time)
    updated_at: float = attrs.field(validator=_time)
    phase: DeploymentPhase = attrs.field(default=DeploymentPhase.PENDING,
                                         validator=_member(DeploymentPhase))
    deadline: float | None = attrs.field(default=None, validator=_optional_time)
    duration: float | None = attrs.field(default=None, validator=_optional_duration)
    assignment: dict[str, str] = attrs.field(factory=dict, validator=_assignment)
    failure: str = attrs.field(default="", validator=_text)
    allocations: dict[str, DeploymentAllocation] = attrs.field(factory=dict,
                                                                validator=_allocations)
    network: dict[str, Any] = attrs.field(factory=dict, validator=_json_object)
    """The ensemble network: `{"order": <NetworkOrder wire form>}`, or `{"none":
    reason}`; empty before allocation."""
    commits: dict[str, str] = attrs.field(factory=dict, validator=_commits)
    """Every provider asked to commit for it (written before asking), to the provider
    actor it was asked through: where a restarted orchestrator sends its revert."""


@attrs.frozen
class EventRecord:
    """One entry of a deployment's event stream. `seq` counts from 1 per deployment
    without gaps, so a reader that sees a jump knows that retention dropped what it
    had not read yet. `payload` is JSON data: it reads back as `json.loads` gives it."""

    deployment_id: str = attrs.field(validator=_uuid)
    seq: int = attrs.field(validator=_seq)
    kind: str = attrs.field(validator=_name)
    at: float = attrs.field(validator=_time)
    payload: dict[str, Any] = attrs.field(factory=dict, validator=_json_object)


@attrs.frozen
class HeldResources:
    """What a reservation holds, exactly as a provider accounts for it: cpu in
    millicores (integers: sums and differences never drift), bytes of ram and disk,
    and GPUs by device id (which cards, not how many, so a restart frees the right ones)."""

    millicores: int = attrs.field(default=0, validator=_amount)
    ram: int = attrs.field(default=0, validator=_amount)
    disk: int = attrs.field(default=0, validator=_amount)
    gpus: tuple[str, ...] = attrs.field(default=(), validator=_devices)


@attrs.frozen
class ReservationRecord:
    """What a provider holds for one ensemble node of a deployment. `ports` are the
    public ports it holds; `lease_expires_at` is when a reservation not yet allocated
    lets go (None: no lease, e.g. once allocated)."""

    id: str = attrs.field(validator=_name)
    deployment_id: str = attrs.field(validator=_uuid)
    orchestrator: str = attrs.field(validator=_did)  # the DID that asked for it
    node: str = attrs.field(validator=_name)  # the ensemble node
    resources: HeldResources = attrs.field(validator=_member(HeldResources))
    lease_expires_at: float | None = attrs.field(validator=_optional_time)
    ports: tuple[int, ...] = attrs.field(default=(), validator=_ports)
    state: ReservationState = attrs.field(default=ReservationState.RESERVED,
                                          validator=_member(ReservationState))


@attrs.frozen
class ExecutionIdentity:
    """Enough to find an execution again after a restart and to be sure it is the same
    one: `ident` is what the executor reports (docker container id, process or VMM
    pid); `started` tells a reused pid from the original (a process's start time in
    clock ticks since boot, from /proc/PID/stat); `details` holds executor facts needed
    to re-adopt it (e.g. the process's run directory)."""

    ident: str = attrs.field(validator=_name)
    started: int | None = None
    details: dict[str, str] = attrs.field(factory=dict, validator=_text_mapping)


@attrs.frozen
class AllocationRecord:
    """An allocation a provider runs: its actor, its executor and, once started, its
    execution's identity."""

    id: str = attrs.field(validator=_name)
    deployment_id: str = attrs.field(validator=_uuid)
    name: str = attrs.field(validator=_name)  # the ensemble allocation
    actor: str = attrs.field(validator=_text)  # the allocation actor's ID
    executor: ExecutorKind = attrs.field(validator=_member(ExecutorKind))
    created_at: float = attrs.field(validator=_time)
    execution: ExecutionIdentity | None = None
    state: AllocationState = attrs.field(default=AllocationState.PENDING,
                                         validator=_member(AllocationState))


@attrs.frozen
class HostedDeployment:
    """A deployment as a provider that runs some of it keeps it: the orchestrator actor
    that drives it (`orchestrator`, the only one it obeys), the ensemble YAML its
    allocations were planned from, and the heartbeat rule: if the orchestrator asks
    after none of its allocations for `heartbeat` seconds past `last_seen` (a Unix
    time), the provider takes it down, also when it finds so after a restart."""

    id: str = attrs.field(validator=_uuid)
    orchestrator: str = attrs.field(validator=_did)
    ensemble: str = attrs.field(validator=_text)
    heartbeat: float = attrs.field(validator=_positive_duration)
    last_seen: float = attrs.field(validator=_time)
    network: dict[str, Any] = attrs.field(factory=dict, validator=_json_object)
    """Its ensemble network's order (the wire form), `{}` without one: what a restarted
    provider rebuilds the re-adopted allocations' network from."""
