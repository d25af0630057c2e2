"""Declines and book snapshots are plain data: the wire converter and DAG-CBOR carry them
with no hooks, and a decline that names no known requirement is refused on arrival."""

from __future__ import annotations

import json

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.actor import InvalidArgs, structure_args, unstructure_result, wire_converter
from dms.ensemble._requirements import Resources
from dms.provider import REQUIREMENTS, BookSnapshot, Capacity, Decline, ReservationBook, Unmet
from ucan import decode, encode

GiB = 1 << 30

texts = st.text(max_size=20)
unmets = st.builds(
    Unmet,
    node=texts,
    requirement=st.sampled_from(REQUIREMENTS),
    needed=st.integers(0, 2**63 - 1),
    available=st.integers(0, 2**63 - 1),
    asked=st.lists(texts, max_size=3).map(tuple),
    have=st.lists(texts, max_size=3).map(tuple),
    rejected=st.lists(texts, max_size=3).map(tuple),
)


@settings(max_examples=100)
@given(decline=st.builds(Decline, peer=texts, unmet=st.lists(unmets, max_size=4).map(tuple)))
def test_a_decline_survives_the_wire_unchanged(decline: Decline) -> None:
    data = encode(unstructure_result(decline))
    assert structure_args(decode(data), Decline) == decline
    # and the words are the receiver's own, derived from the numbers
    assert [u.message for u in structure_args(decode(data), Decline).unmet] == [u.message for u in decline.unmet]


def test_a_decline_naming_an_unknown_requirement_is_refused_on_arrival() -> None:
    wire = unstructure_result(Decline("p", (Unmet("web", "ram", needed=2, available=1),)))
    wire["unmet"][0]["requirement"] = "karma"
    with pytest.raises(InvalidArgs, match=r"args.unmet\[0\]"):
        structure_args(wire, Decline)
    with pytest.raises(cattrs.ClassValidationError) as raised:
        wire_converter.structure(wire, Decline)
    assert raised.group_contains(ValueError, match="requirement must be one of excluded, pinned, executor", depth=3)


def test_a_decline_with_a_negative_shortfall_is_refused_on_arrival() -> None:
    wire = unstructure_result(Decline("p", (Unmet("web", "ram", needed=2, available=1),)))
    wire["unmet"][0]["available"] = -1
    with pytest.raises(InvalidArgs, match=r"args.unmet\[0\]"):
        structure_args(wire, Decline)
    with pytest.raises(cattrs.ClassValidationError) as raised:
        wire_converter.structure(wire, Decline)
    assert raised.group_contains(ValueError, match="available must be a whole number >= 0, got -1", depth=3)


def test_a_book_snapshot_round_trips_through_json_and_reloads_the_same_book() -> None:
    offered = Capacity(millicores=4000, ram=8 * GiB, public_ports=range(30000, 30010))
    book = ReservationBook(offered)
    first = book.reserve("d1", "web", Resources(cpu=1, ram=GiB), (0, 30001), 0.0, 30, owner="o")
    book.allocate(first.id, 1.0, lease_seconds=60)
    book.reserve("d2", "db", Resources(cpu=0.5, ram=GiB), (), 2.0, 30, owner="o2")
    text = json.dumps(wire_converter.unstructure(book.snapshot()))
    restored = wire_converter.structure(json.loads(text), BookSnapshot)
    assert restored == book.snapshot()
    again = ReservationBook.from_snapshot(offered, restored)
    assert again.reservations() == book.reservations()
    assert again.free(3.0) == book.free(3.0)
