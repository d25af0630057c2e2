"""A deployment's event stream: seqs without gaps from 1, resumable reads, bounded
retention in events and in bytes, and payloads refused when they cannot be kept."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from dms.store import (
    MAX_EVENT_PAYLOAD,
    MAX_PAGE,
    DeploymentRecord,
    EventRecord,
    EventRetention,
    EventTooLarge,
    InvalidRecord,
    NodeDatabase,
    RecordNotFound,
)

Make = Callable[..., DeploymentRecord]


def seqs(events: tuple[EventRecord, ...]) -> list[int]:
    return [event.seq for event in events]


def test_each_deployment_counts_its_events_from_one(db: NodeDatabase, deployment: Make):
    first, second = deployment(), deployment()
    db.create_deployment(first)
    db.create_deployment(second)
    made = [db.append_event(first.id, "phase", {"to": "bidding"}, at=1.0),
            db.append_event(second.id, "phase", {"to": "bidding"}, at=2.0),
            db.append_event(first.id, "allocation", {"name": "web.main", "state": "running",
                                                     "exit": None, "tail": ["a", "b"]}, at=3.0)]
    assert [(event.deployment_id, event.seq) for event in made] == [
        (first.id, 1), (second.id, 1), (first.id, 2)]
    assert db.events_since(first.id) == (made[0], made[2])
    assert db.events_since(second.id) == (made[1],)


def test_a_stream_resumes_after_the_last_seq_it_saw_a_page_at_a_time(db: NodeDatabase,
                                                                     deployment: Make):
    record = deployment()
    db.create_deployment(record)
    for n in range(25):
        db.append_event(record.id, "tick", {"n": n}, at=float(n))
    seen: list[int] = []
    while page := db.events_since(record.id, after=seen[-1] if seen else 0, limit=10):
        assert len(page) <= 10
        seen += seqs(page)
    assert seen == list(range(1, 26))
    assert db.events_since(record.id, after=25) == ()
    assert [event.payload["n"] for event in db.recent_events(record.id, limit=3)] == [22, 23, 24]


@pytest.mark.parametrize(("after", "limit", "problem"), [
    (-1, 10, "after=-1: expected a seq"),
    (0, 0, "limit=0: expected 1 to"),
    (0, MAX_PAGE + 1, f"limit={MAX_PAGE + 1}: expected 1 to {MAX_PAGE}"),
])
def test_a_page_is_bounded(db: NodeDatabase, deployment: Make, after: int, limit: int,
                           problem: str):
    record = deployment()
    db.create_deployment(record)
    with pytest.raises(ValueError, match=problem):
        db.events_since(record.id, after=after, limit=limit)


def test_events_of_an_unknown_deployment_are_not_found(db: NodeDatabase):
    missing = str(uuid.uuid4())
    with pytest.raises(RecordNotFound, match=f"no deployments record '{missing}'"):
        db.append_event(missing, "phase", {}, at=1.0)
    with pytest.raises(RecordNotFound):
        db.events_since(missing)
    with pytest.raises(RecordNotFound):
        db.recent_events(missing)


def test_retention_keeps_the_newest_events_and_the_gap_shows(db_path: Path, deployment: Make):
    with NodeDatabase.open(db_path, EventRetention(events=5)) as db:
        record = deployment()
        db.create_deployment(record)
        for n in range(12):
            db.append_event(record.id, "tick", {"n": n}, at=float(n))
        kept = db.events_since(record.id)
        assert seqs(kept) == [8, 9, 10, 11, 12]  # a reader at 0 sees it missed 1..7
        assert db.append_event(record.id, "tick", {}, at=13.0).seq == 13


def test_a_lowered_retention_applies_at_the_next_event(db_path: Path, deployment: Make):
    record = deployment()
    with NodeDatabase.open(db_path) as db:
        db.create_deployment(record)
        for n in range(20):
            db.append_event(record.id, "tick", {"n": n}, at=float(n))
    with NodeDatabase.open(db_path, EventRetention(events=5)) as db:
        db.append_event(record.id, "tick", {"n": 20}, at=20.0)
        assert seqs(db.events_since(record.id)) == [17, 18, 19, 20, 21]


def test_retention_bounds_the_payload_bytes_kept(db_path: Path, deployment: Make):
    retention = EventRetention(events=1_000, payload_bytes=MAX_EVENT_PAYLOAD)
    with NodeDatabase.open(db_path, retention) as db:
        record, other = deployment(), deployment()
        db.create_deployment(record)
        db.create_deployment(other)
        db.append_event(other.id, "small", {}, at=0.0)
        blob = "x" * (MAX_EVENT_PAYLOAD // 4)
        size = len(blob) + len('{"tail":""}')
        assert 3 * size <= MAX_EVENT_PAYLOAD < 4 * size  # so three fit in the budget
        for n in range(10):
            db.append_event(record.id, "log", {"tail": blob}, at=float(n))
        assert seqs(db.events_since(record.id)) == [8, 9, 10]
        assert seqs(db.events_since(other.id)) == [1]  # each deployment has its own budget


def test_an_oversized_payload_is_refused_with_its_size(db: NodeDatabase, deployment: Make):
    record = deployment()
    db.create_deployment(record)
    with pytest.raises(EventTooLarge, match=f"event for deployment {record.id}: payload is "
                       f"{MAX_EVENT_PAYLOAD + 11} bytes of JSON, at most {MAX_EVENT_PAYLOAD}"):
        db.append_event(record.id, "log", {"tail": "x" * MAX_EVENT_PAYLOAD}, at=1.0)
    assert db.events_since(record.id) == ()
    assert db.append_event(record.id, "log", {}, at=2.0).seq == 1  # no seq was spent


@pytest.mark.parametrize(("payload", "problem"), [
    ({"at": float("nan")}, "Out of range float values are not JSON compliant"),
    ({"raw": b"bytes"}, "not JSON serializable"),
    ({"set": {1, 2}}, "not JSON serializable"),
    ([1, 2], "expected a JSON object"),
])
def test_a_payload_that_is_not_json_data_is_refused_by_name(db: NodeDatabase,
                                                             deployment: Make,
                                                             payload: dict[str, object],
                                                             problem: str):
    record = deployment()
    db.create_deployment(record)
    with pytest.raises(InvalidRecord, match=f"EventRecord.payload: .*{problem}"):
        db.append_event(record.id, "phase", payload, at=1.0)


def test_a_kind_is_a_name(db: NodeDatabase, deployment: Make):
    record = deployment()
    db.create_deployment(record)
    with pytest.raises(InvalidRecord, match="EventRecord.kind"):
        db.append_event(record.id, "", {}, at=1.0)


def test_retention_is_configured_within_what_one_event_may_hold():
    with pytest.raises(InvalidRecord, match="EventRetention.events: 0 is not a positive"):
        EventRetention(events=0)
    with pytest.raises(InvalidRecord, match="EventRetention.payload_bytes: 10 is less than"):
        EventRetention(payload_bytes=10)
