"""Deployments, reservations and allocations read back as written, through one
transaction per call or several grouped; a damaged row is a named error."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.store import (
    AllocationRecord,
    AllocationState,
    DeploymentAllocation,
    DeploymentPhase,
    DeploymentRecord,
    DuplicateRecord,
    ExecutionIdentity,
    HeldResources,
    InvalidRecord,
    MalformedRow,
    NodeDatabase,
    RecordNotFound,
    ReservationRecord,
    ReservationState,
    StoreClosed,
)
from dms.workload import ExecutorKind
from ucan import SigningKey

DIDS = [SigningKey.generate().did for _ in range(3)]
PROVIDER = DIDS[1]

Make = Callable[..., DeploymentRecord]


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeDatabase]:
    """One database for a property's examples (their ids never collide)."""
    with NodeDatabase.open(tmp_path_factory.mktemp("store") / "node.sqlite3") as database:
        yield database


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
seconds = st.floats(min_value=0, max_value=4e9, allow_nan=False)
uuids = st.uuids().map(str)
dids = st.sampled_from(DIDS)
deployments = st.builds(
    DeploymentRecord,
    id=uuids, owner=dids, ensemble=st.text(st.characters(codec="utf-8")),
    created_at=seconds, updated_at=seconds, phase=st.sampled_from(DeploymentPhase),
    deadline=st.none() | seconds, duration=st.none() | seconds,
    assignment=st.dictionaries(names, dids, max_size=4),
    failure=st.text(st.characters(codec="utf-8"), max_size=40),
    allocations=st.dictionaries(names, st.builds(
        DeploymentAllocation, provider=dids, actor=st.text(max_size=60),
        state=st.sampled_from(AllocationState)), max_size=4),
    network=st.sampled_from([{}, {"none": "provider x offers no network"}, {"order": {
        "plan": {"ensemble": "e", "subnet": "10.1.2.0/24", "addresses": {"a": "10.1.2.2"}},
        "hosts": {DIDS[0]: ["a"]}, "dns_names": {}}}]),
)
resources = st.builds(
    HeldResources, millicores=st.integers(0, 2**40), ram=st.integers(0, 2**62),
    disk=st.integers(0, 2**62),
    gpus=st.sets(names, max_size=3).map(lambda gpus: tuple(sorted(gpus))))
reservations = st.builds(
    ReservationRecord, id=names, deployment_id=uuids, orchestrator=dids, node=names,
    resources=resources, lease_expires_at=st.none() | seconds,
    ports=st.sets(st.integers(1, 65535), max_size=5).map(lambda ports: tuple(sorted(ports))),
    state=st.sampled_from(ReservationState))
allocations = st.builds(
    AllocationRecord, id=names, deployment_id=uuids, name=names, actor=st.text(max_size=60),
    executor=st.sampled_from(ExecutorKind), created_at=seconds,
    execution=st.none() | st.builds(
        ExecutionIdentity, ident=names, started=st.none() | st.integers(0, 2**62),
        details=st.dictionaries(names, st.text(max_size=20), max_size=3)),
    state=st.sampled_from(AllocationState))


@settings(max_examples=60, deadline=None)
@given(deployments)
def test_any_deployment_reads_back_as_it_was_written(shared_db: NodeDatabase,
                                                     deployment: DeploymentRecord):
    deployment = attrs.evolve(deployment, id=str(uuid.uuid4()))  # hypothesis repeats uuids
    shared_db.create_deployment(deployment)
    assert shared_db.get_deployment(deployment.id) == deployment


@settings(max_examples=60, deadline=None)
@given(reservations, allocations)
def test_any_reservation_and_allocation_read_back_as_written(
        shared_db: NodeDatabase, reservation: ReservationRecord, allocation: AllocationRecord):
    shared_db.put_reservation(reservation)
    shared_db.put_allocation(allocation)
    assert shared_db.get_reservation(reservation.id) == reservation
    assert shared_db.get_allocation(allocation.id) == allocation


def test_a_deployment_is_created_once(db: NodeDatabase, deployment: Make):
    record = deployment()
    db.create_deployment(record)
    with pytest.raises(DuplicateRecord, match=f"deployments record '{record.id}' already exists"):
        db.create_deployment(attrs.evolve(record, ensemble="other"))
    assert db.get_deployment(record.id) == record


def test_an_unknown_record_is_not_found_by_table_and_key(db: NodeDatabase):
    missing = str(uuid.uuid4())
    with pytest.raises(RecordNotFound, match=f"no deployments record '{missing}'") as absent:
        db.get_deployment(missing)
    assert (absent.value.table, absent.value.key) == ("deployments", missing)
    with pytest.raises(RecordNotFound, match="no reservations record 'r9'"):
        db.get_reservation("r9")
    with pytest.raises(RecordNotFound, match="no allocations record 'a9'"):
        db.get_allocation("a9")


def test_deployments_are_listed_oldest_first_by_owner_and_phase(db: NodeDatabase,
                                                                  deployment: Make):
    mine_running = deployment(created_at=3.0, phase=DeploymentPhase.RUNNING)
    mine_failed = deployment(created_at=1.0, phase=DeploymentPhase.FAILED)
    theirs_running = deployment(owner=DIDS[2], created_at=2.0, phase=DeploymentPhase.RUNNING)
    for record in (mine_running, mine_failed, theirs_running):
        db.create_deployment(record)
    owner = mine_running.owner
    assert db.list_deployments() == (mine_failed, theirs_running, mine_running)
    assert db.list_deployments(owner=owner) == (mine_failed, mine_running)
    assert db.list_deployments(phases={DeploymentPhase.RUNNING}) == (theirs_running, mine_running)
    assert db.list_deployments(owner=owner, phases=[DeploymentPhase.FAILED,
                                                    DeploymentPhase.PENDING]) == (mine_failed,)
    assert db.list_deployments(owner=DIDS[1]) == ()


def test_an_update_applies_the_change_and_stamps_the_time(db: NodeDatabase, deployment: Make):
    record = deployment()
    db.create_deployment(record)
    allocation = DeploymentAllocation(provider=PROVIDER, actor="did:key:zActor",
                                      state=AllocationState.HEALTHY)
    written = db.update_deployment(record.id, lambda d: attrs.evolve(
        d, phase=DeploymentPhase.RUNNING, assignment={"web": PROVIDER},
        allocations={"web.main": allocation}), at=2_000.0)
    assert written == attrs.evolve(record, phase=DeploymentPhase.RUNNING, updated_at=2_000.0,
                                   assignment={"web": PROVIDER},
                                   allocations={"web.main": allocation})
    assert db.get_deployment(record.id) == written


@pytest.mark.parametrize(("field", "value"), [
    ("id", str(uuid.uuid4())), ("owner", DIDS[2]), ("created_at", 5.0)])
def test_an_update_cannot_change_who_made_a_deployment_or_when(
        db: NodeDatabase, deployment: Make, field: str, value: object):
    record = deployment()
    db.create_deployment(record)
    with pytest.raises(InvalidRecord, match=f"DeploymentRecord.{field}: cannot change"):
        db.update_deployment(record.id, lambda d: attrs.evolve(d, **{field: value}), at=9.0)
    assert db.get_deployment(record.id) == record


def test_an_update_of_an_unknown_deployment_is_not_found(db: NodeDatabase):
    with pytest.raises(RecordNotFound):
        db.update_deployment(str(uuid.uuid4()), lambda d: d, at=1.0)


def test_a_transaction_commits_everything_or_nothing(db: NodeDatabase, deployment: Make):
    first, second = deployment(), deployment(created_at=2_000.0)
    with pytest.raises(RuntimeError), db.transaction():
        db.create_deployment(first)
        db.update_deployment(first.id, lambda d: attrs.evolve(d, failure="x"), at=5.0)
        db.create_deployment(second)
        raise RuntimeError("changed my mind")
    assert db.list_deployments() == ()
    with db.transaction():
        db.create_deployment(first)
        db.create_deployment(second)
    assert db.list_deployments() == (first, second)


def test_a_failed_inner_transaction_undoes_only_its_own_part(db: NodeDatabase,
                                                             deployment: Make):
    kept, dropped, duplicate = deployment(), deployment(), deployment()
    db.create_deployment(duplicate)
    with db.transaction():
        db.create_deployment(kept)
        with pytest.raises(DuplicateRecord), db.transaction():
            db.create_deployment(dropped)
            db.create_deployment(duplicate)
    assert {record.id for record in db.list_deployments()} == {kept.id, duplicate.id}


def test_deleting_a_deployment_deletes_its_events(db: NodeDatabase, db_path: Path,
                                                  deployment: Make):
    record = deployment()
    db.create_deployment(record)
    db.append_event(record.id, "phase", {"to": "bidding"}, at=1.0)
    assert db.delete_deployment(record.id) is True
    assert db.delete_deployment(record.id) is False
    with sqlite3.connect(db_path) as connection:  # the foreign key cascaded
        assert connection.execute("SELECT count(*) FROM deployment_events").fetchone() == (0,)


def test_a_provider_lists_and_replaces_its_reservations_and_allocations(db: NodeDatabase):
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    held = ReservationRecord(id="r1", deployment_id=ours, orchestrator=DIDS[0], node="web",
                             resources=HeldResources(millicores=2000, ram=2**30, gpus=("gpu0",)),
                             lease_expires_at=30.0,
                             ports=(8080, 8443))
    other = attrs.evolve(held, id="r2", deployment_id=theirs, node="db")
    for reservation in (held, other):
        db.put_reservation(reservation)
    allocated = attrs.evolve(held, state=ReservationState.ALLOCATED, lease_expires_at=None)
    db.put_reservation(allocated)  # same id: replaced
    assert db.list_reservations() == (allocated, other)
    assert db.list_reservations(deployment_id=ours) == (allocated,)
    assert db.list_reservations(states={ReservationState.RESERVED}) == (other,)
    assert db.delete_reservation("r2") is True
    assert db.delete_reservation("r2") is False

    starting = AllocationRecord(id="a1", deployment_id=ours, name="web.main", actor="did:key:z1",
                                executor=ExecutorKind.PROCESS, created_at=10.0,
                                state=AllocationState.STARTING)
    db.put_allocation(starting)
    running = attrs.evolve(starting, state=AllocationState.RUNNING, execution=ExecutionIdentity(
        ident="4242", started=987654, details={"directory": "/var/lib/dms/run/web.main-1"}))
    db.put_allocation(running)
    stopped = attrs.evolve(starting, id="a2", created_at=11.0, state=AllocationState.STOPPED)
    db.put_allocation(stopped)
    assert db.list_allocations(deployment_id=ours) == (running, stopped)
    assert db.list_allocations(states=[s for s in AllocationState if not s.final]) == (running,)
    assert db.list_allocations(deployment_id=theirs) == ()
    assert db.delete_allocation("a1") is True
    assert db.list_allocations() == (stopped,)


DEPLOYMENT_ROW_DAMAGE = [
    ("phase", "'bogus'", "'bogus' is not one of 'pending'"),
    ("owner", "'alice'", "'alice' is not a DID"),
    ("assignment", "'{\"web\": 5}'", r"expected str, got int @ value\['web'\]"),
    ("assignment", "'[1]'", "expected a mapping"),
    ("allocations", "'{\"web.main\": {\"provider\": \"x\"}}'", "provider: 'x' is not a DID"),
    ("allocations", "'{\"web.main\": {\"provider\": \"did:key:z1\", \"colour\": 1}}'",
     r"extra fields found \(colour\)"),
    ("allocations", "'{\"web.main\": '", "not JSON"),
    ("allocations", "'{\"web.main\": {\"provider\": \"did:key:z1\", \"state\": \"up\"}}'",
     "'up' is not one of"),
]


@pytest.mark.parametrize(("column", "sql_value", "problem"), DEPLOYMENT_ROW_DAMAGE)
def test_a_damaged_deployment_row_is_malformed_naming_table_key_and_column(
        db: NodeDatabase, db_path: Path, deployment: Make, column: str, sql_value: str,
        problem: str):
    record = deployment()
    db.create_deployment(record)
    with sqlite3.connect(db_path) as connection:
        connection.execute(f"UPDATE deployments SET {column} = {sql_value}")
    for read in (lambda: db.get_deployment(record.id), db.list_deployments):
        with pytest.raises(MalformedRow, match=problem) as damaged:
            read()
        assert (damaged.value.table, damaged.value.key, damaged.value.column) == (
            "deployments", record.id, column)
        assert str(damaged.value).startswith(f"deployments row '{record.id}': column {column}: ")


@pytest.mark.parametrize(("table", "column", "sql_value", "problem"), [
    ("reservations", "resources", "'{\"millicores\": \"2\"}'", "expected int, got str"),
    ("reservations", "resources", "'{\"millicores\": -1}'", "-1 is not a whole number"),
    ("reservations", "resources", "'{\"millicores\": NaN}'", "not JSON: NaN is not a JSON"),
    ("reservations", "resources", "'{\"gpus\": [\"gpu0\", \"gpu0\"]}'", "names a device twice"),
    ("reservations", "lease_expires_at", "1e999", "inf is not a finite"),
    ("reservations", "ports", "'[0]'", "0 is not a port number"),
    ("reservations", "state", "'gone'", "'gone' is not one of"),
    ("allocations", "executor", "'k8s'", "'k8s' is not one of 'docker'"),
    ("allocations", "execution", "'{\"ident\": 1}'", "expected str, got int"),
    ("allocations", "execution", "'nope'", "not JSON"),
])
def test_a_damaged_provider_row_is_malformed_naming_its_column(
        db: NodeDatabase, db_path: Path, table: str, column: str, sql_value: str, problem: str):
    deployment_id = str(uuid.uuid4())
    db.put_reservation(ReservationRecord(
        id="r1", deployment_id=deployment_id, orchestrator=DIDS[0], node="web",
        resources=HeldResources(millicores=1000), lease_expires_at=30.0))
    db.put_allocation(AllocationRecord(
        id="r1", deployment_id=deployment_id, name="web.main", actor="", created_at=1.0,
        executor=ExecutorKind.DOCKER, execution=ExecutionIdentity(ident="c0ffee")))
    with sqlite3.connect(db_path) as connection:
        connection.execute(f"UPDATE {table} SET {column} = {sql_value}")
    with pytest.raises(MalformedRow, match=problem) as damaged:
        db.get_reservation("r1") if table == "reservations" else db.get_allocation("r1")
    assert (damaged.value.table, damaged.value.key, damaged.value.column) == (table, "r1", column)


def test_a_value_that_would_not_read_back_is_refused_before_it_is_written(db: NodeDatabase,
                                                                         db_path: Path):
    record = AllocationRecord(id="a1", deployment_id=str(uuid.uuid4()), name="web.main",
                              actor="", executor=ExecutorKind.PROCESS, created_at=1.0,
                              execution=ExecutionIdentity(ident="4242"))
    wrong = attrs.evolve(record, execution=attrs.evolve(record.execution, started="early"))
    with pytest.raises(InvalidRecord, match="AllocationRecord.execution: would not read back: "
                       "expected int, got str @ value.started"):
        db.put_allocation(wrong)
    assert db.list_allocations() == ()


def test_a_closed_database_refuses_to_be_used(db_path: Path):
    database = NodeDatabase.open(db_path)
    database.close()
    database.close()
    with pytest.raises(StoreClosed, match=f"{db_path}: the store is closed"):
        database.list_deployments()


def test_pruning_keeps_the_last_ended_deployments_and_every_live_one(
        db: NodeDatabase, deployment: Make):
    ended = [deployment(phase=phase, updated_at=2_000.0 + n) for n, phase in
             enumerate([DeploymentPhase.COMPLETED, DeploymentPhase.FAILED] * 3)]
    live = [deployment(phase=phase, updated_at=1_000.0) for phase in
            (DeploymentPhase.RUNNING, DeploymentPhase.PENDING, DeploymentPhase.SHUTTING_DOWN)]
    for record in (*ended, *live):
        db.create_deployment(record)
        db.append_event(record.id, "phase", {"phase": record.phase.value}, at=1.0)
    pruned = db.prune_ended_deployments(keep=2)
    assert pruned == tuple(sorted(r.id for r in ended[:4]))  # the four that ended first
    left = {r.id for r in db.list_deployments()}
    assert left == {r.id for r in (*ended[4:], *live)}
    with pytest.raises(RecordNotFound):
        db.events_since(ended[0].id)
    events = db._db.execute("SELECT count(*) FROM deployment_events").fetchone()[0]
    assert events == 2 + 3  # their events went with them
    assert db.prune_ended_deployments(keep=2) == ()  # nothing more to prune


def test_pruning_refuses_a_keep_that_is_not_a_count(db: NodeDatabase, deployment: Make):
    db.create_deployment(deployment(phase=DeploymentPhase.COMPLETED))
    for keep in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="keep="):
            db.prune_ended_deployments(keep)  # type: ignore[arg-type]
    assert len(db.list_deployments()) == 1
