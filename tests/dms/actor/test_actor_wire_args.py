"""Args and results go out as IPLD data: plain data as it is, anything else through the
wire converter (attrs instances unstructured, tuples become lists)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from dms.actor import unstructure_result
from ucan import CID


@attrs.frozen
class Point:
    x: int
    y: int


def test_plain_ipld_data_is_returned_as_it_is() -> None:
    cid = CID.for_bytes(b"x")
    value = {"p": "x" * 256, "n": [1, 2.5, True, None, b"\x00", cid], "m": {"k": "v"}}
    assert unstructure_result(value) is value


def test_attrs_instances_inside_plain_data_are_unstructured() -> None:
    assert unstructure_result({"at": [Point(1, 2)]}) == {"at": [{"x": 1, "y": 2}]}
    assert unstructure_result(Point(3, 4)) == {"x": 3, "y": 4}
    assert unstructure_result({"a": (1, 2)}) == {"a": [1, 2]}


def test_a_value_that_holds_itself_is_left_to_the_converter() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(RecursionError):  # the converter's answer: the look ends
        unstructure_result(looped)  # (a behavior returning it gets an error reply)
