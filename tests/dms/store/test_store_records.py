"""Records refuse what they cannot mean, naming the field, when they are built."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

import pytest

from dms.store import (
    AllocationState,
    DeploymentAllocation,
    DeploymentPhase,
    DeploymentRecord,
    EventRecord,
    ExecutionIdentity,
    HeldResources,
    InvalidRecord,
    ReservationRecord,
    ReservationState,
)
from ucan import SigningKey

DID = SigningKey.generate().did


def test_the_phase_names_are_the_deployment_state_machine_s():
    # the values are the database format and the wire's: they change only by migration
    assert [phase.value for phase in DeploymentPhase] == [
        "pending", "bidding", "solving", "committing", "allocating", "running",
        "shutting_down", "completed", "failed"]
    assert {phase for phase in DeploymentPhase if phase.final} == {
        DeploymentPhase.COMPLETED, DeploymentPhase.FAILED}
    assert DeploymentPhase.RUNNING == "running"


def test_final_states_are_the_ones_with_nothing_left_running():
    assert [state for state in ReservationState if state.final] == [ReservationState.RELEASED]
    assert {state for state in AllocationState if state.final} == {
        AllocationState.COMPLETED, AllocationState.FAILED, AllocationState.STOPPED}


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("id", "not-a-uuid", "'not-a-uuid' is not a UUID"),
    ("id", str(uuid.uuid4()).upper(), "canonical form"),
    ("owner", "alice", "'alice' is not a DID"),
    ("created_at", math.nan, "nan is not a finite number of seconds"),
    ("updated_at", math.inf, "inf is not a finite"),
    ("deadline", "tomorrow", "'tomorrow' is not a finite"),
    ("duration", -1.0, "-1.0 is negative"),
    ("phase", "running", "expected a DeploymentPhase"),
    ("assignment", {"web": "provider-1"}, "node 'web': provider 'provider-1' is not a DID"),
    ("assignment", {"": DID}, "ensemble node '' is not a name"),
    ("allocations", {"web.main": "running"}, "allocation 'web.main': expected a Deployment"),
    ("ensemble", "\udc80", "not valid UTF-8 text at character 0"),
])
def test_a_deployment_refuses_a_bad_field_by_name(
        deployment: Callable[..., DeploymentRecord], field: str, value: object, problem: str):
    with pytest.raises(InvalidRecord, match=problem) as refused:
        deployment(**{field: value})
    assert refused.value.record == "DeploymentRecord"
    assert refused.value.field == field
    assert str(refused.value).startswith(f"DeploymentRecord.{field}: ")


def test_an_allocation_of_a_deployment_names_its_provider_by_did():
    with pytest.raises(InvalidRecord, match="DeploymentAllocation.provider: 'p1' is not a DID"):
        DeploymentAllocation(provider="p1")


@pytest.mark.parametrize(("ports", "problem"), [
    ((0,), "0 is not a port number"),
    ((65536,), "65536 is not a port number"),
    ((True,), "True is not a port number"),
    ((80, 80), "names a port twice"),
    ([80], "expected a tuple"),
])
def test_a_reservation_holds_distinct_port_numbers(ports: object, problem: str):
    with pytest.raises(InvalidRecord, match=problem) as refused:
        ReservationRecord(id="r1", deployment_id=str(uuid.uuid4()), orchestrator=DID,
                          node="web", resources=HeldResources(millicores=1000),
                          lease_expires_at=10.0,
                          ports=ports)  # type: ignore[arg-type]
    assert refused.value.field == "ports"


@pytest.mark.parametrize(("fields", "problem"), [
    ({"millicores": 0.5}, "HeldResources.millicores: 0.5 is not a whole number"),
    ({"ram": -1}, "HeldResources.ram: -1 is not a whole number"),
    ({"gpus": ("gpu0", "gpu0")}, "HeldResources.gpus: .* names a device twice"),
    ({"gpus": ("",)}, "HeldResources.gpus: expected a tuple of device ids"),
])
def test_held_resources_are_exact_amounts_and_distinct_devices(fields: dict[str, object],
                                                               problem: str):
    with pytest.raises(InvalidRecord, match=problem):
        HeldResources(**fields)  # type: ignore[arg-type]


def test_an_event_seq_counts_from_one():
    with pytest.raises(InvalidRecord, match="EventRecord.seq: 0 is not a seq"):
        EventRecord(deployment_id=str(uuid.uuid4()), seq=0, kind="phase", at=1.0)


def test_an_execution_identity_names_its_execution():
    with pytest.raises(InvalidRecord, match="ExecutionIdentity.ident"):
        ExecutionIdentity(ident="")


def test_execution_details_are_text():
    with pytest.raises(InvalidRecord, match="ExecutionIdentity.details: expected a mapping of "
                       "text to text"):
        ExecutionIdentity(ident="4242", details={"directory": 7})  # type: ignore[dict-item]
