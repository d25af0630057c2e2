"""Declines are plain data: the wire converter and DAG-CBOR carry them with no hooks, and
a decline that names no known requirement is refused on arrival."""

from __future__ import annotations

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.actor import InvalidArgs, structure_args, unstructure_result, wire_converter
from dms.provider import REQUIREMENTS, Decline, Unmet
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
