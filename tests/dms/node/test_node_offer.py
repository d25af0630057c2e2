"""`dms node run --provide`: what an operator offers, read from one option."""

from __future__ import annotations

import re

import pytest

from dms.node._offer import InvalidOffer, parse_offer, parse_ports
from dms.provider import Capacity, Share

GiB = 2**30
MACHINE = Capacity(millicores=8000, ram=32 * GiB, disk=500 * GiB)


def test_values_cap_the_machine_and_shares_take_part_of_it() -> None:
    offered = parse_offer("cpu=2,ram=4Gi,disk=20Gi").apply(MACHINE)
    assert (offered.millicores, offered.ram, offered.disk) == (2000, 4 * GiB, 20 * GiB)
    half = parse_offer("cpu=50%, ram=1Gi").apply(MACHINE)
    assert (half.millicores, half.ram, half.disk) == (4000, GiB, 500 * GiB)
    assert parse_offer("all").apply(MACHINE) == MACHINE


def test_an_offer_never_exceeds_the_machine() -> None:
    assert parse_offer("cpu=64,ram=1Ti").apply(MACHINE).millicores == 8000
    assert parse_offer("cpu=500m").cpu == Share(at_most=0.5)


@pytest.mark.parametrize(("text", "named"), [
    ("cpu", "KEY=VALUE"),
    ("cores=2", "'cores' is not one of cpu, ram, disk, gpus"),
    ("cpu=1,cpu=2", "cpu is given twice"),
    ("ram=lots", "ram=lots"),
    ("ram=8Mb", "bits"),
    ("cpu=150%", "between 0% and 100%"),
    ("gpus=1.5", "whole number"),
    ("cpu=-1", "0 or more"),
    ("disk=", "KEY=VALUE"),
])
def test_a_bad_offer_names_the_key_and_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidOffer, match=re.escape(named)):
        parse_offer(text)


def test_ports_are_ranges_and_single_ports() -> None:
    assert parse_ports("8000-8002, 9100") == frozenset({8000, 8001, 8002, 9100})
    assert parse_ports("1-65535") == frozenset(range(1, 65536))


@pytest.mark.parametrize(("text", "named"), [
    ("http", "'http' is not a port or a LOW-HIGH range"),
    ("9000-8000", "low to high"),
    ("0-10", "ports are 1-65535"),
    ("70000", "ports are 1-65535"),
    ("8000-", "'8000-' is not a port"),
])
def test_bad_ports_name_the_item_and_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidOffer, match=re.escape(named)):
        parse_ports(text)
