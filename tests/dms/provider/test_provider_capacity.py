"""Capacity and onboarding limits: what a machine has and what its operator lends."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.ensemble._requirements import Gpu, Location
from dms.provider import (
    Capacity,
    GpuDevice,
    InvalidCapacity,
    InvalidLimit,
    OnboardingLimits,
    Share,
    millicores,
)
from dms.workload import ExecutorKind

GiB = 1 << 30

MACHINE = Capacity(
    millicores=8000,
    ram=32 * GiB,
    disk=500 * GiB,
    gpus=(GpuDevice("0", Gpu("nvidia", "T4", 16 * GiB)), GpuDevice("1", Gpu("nvidia", "A100", 80 * GiB))),
    executors={"docker", "process"},
    location=Location(continent="EU", country="DE"),
    public_ports=range(30000, 30100),
)


def test_an_operator_offers_at_most_4_cpu_and_8_gib() -> None:
    offered = OnboardingLimits(cpu=Share(at_most=4), ram=Share(at_most=8 * GiB)).apply(MACHINE)
    assert (offered.millicores, offered.ram, offered.disk) == (4000, 8 * GiB, 500 * GiB)
    assert offered.gpus == MACHINE.gpus and offered.public_ports == MACHINE.public_ports


def test_a_fraction_and_a_cap_together_offer_the_smaller() -> None:
    limits = OnboardingLimits(ram=Share(fraction=0.5, at_most=20 * GiB), disk=Share(fraction=0.1, at_most=100 * GiB))
    offered = limits.apply(MACHINE)
    assert offered.ram == 16 * GiB  # half of 32 is below the 20 GiB cap
    assert offered.disk == 50 * GiB  # a tenth of 500 is below the 100 GiB cap


def test_fractional_cores_round_down_to_whole_millicores() -> None:
    offered = OnboardingLimits(cpu=Share(fraction=1 / 3)).apply(Capacity(millicores=1000))
    assert offered.millicores == 333
    assert OnboardingLimits(cpu=Share(at_most=0.0015)).apply(Capacity(millicores=1000)).millicores == 1


def test_gpus_are_lent_in_the_machines_order() -> None:
    offered = OnboardingLimits(gpus=Share(at_most=1)).apply(MACHINE)
    assert [d.id for d in offered.gpus] == ["0"]
    assert OnboardingLimits(gpus=Share(fraction=0)).apply(MACHINE).gpus == ()


def test_an_operator_can_withhold_an_executor_but_not_add_one() -> None:
    assert OnboardingLimits(executors={"process"}).apply(MACHINE).executors == {ExecutorKind.PROCESS}
    firecracker_only = OnboardingLimits(executors={"firecracker"}).apply(MACHINE)
    assert firecracker_only.executors == frozenset()


@pytest.mark.parametrize(("limits", "message"), [
    (lambda: OnboardingLimits(ram=Share(fraction=1.5)), "ram.fraction must be between 0 and 1, got 1.5"),
    (lambda: OnboardingLimits(cpu=Share(fraction=float("nan"))), "cpu.fraction must be between 0 and 1"),
    (lambda: OnboardingLimits(disk=Share(at_most=-1)), "disk.at_most must be a finite number >= 0, got -1"),
    (lambda: OnboardingLimits(gpus=Share(at_most=float("inf"))), "gpus.at_most must be a finite number >= 0"),
    (lambda: OnboardingLimits(cpu=Share(at_most="4")), "cpu.at_most must be a number or None"),  # type: ignore[arg-type]
    (lambda: OnboardingLimits(executors={"podman"}), "executors: 'podman' is not a valid ExecutorKind"),
])
def test_a_meaningless_limit_is_refused_naming_it(limits: object, message: str) -> None:
    with pytest.raises(InvalidLimit, match=message.replace("(", r"\(").replace(")", r"\)")):
        limits()  # type: ignore[operator]


@pytest.mark.parametrize(("capacity", "message"), [
    (lambda: Capacity(ram=-1), "ram must be a whole number >= 0, got -1"),
    (lambda: Capacity(millicores=1.5), "millicores must be a whole number >= 0, got 1.5"),  # type: ignore[arg-type]
    (lambda: Capacity(public_ports={0}), "public_ports: 0 is not a port number 1..65535"),
    (lambda: Capacity(public_ports={70000}), "public_ports: 70000 is not a port number"),
    (lambda: Capacity(public_ports={True}), "public_ports: True is not a port number"),
    (lambda: Capacity(public_ports={8080.0}), "public_ports: 8080.0 is not a port number"),
    (lambda: Capacity(gpus=(GpuDevice("0"), GpuDevice("0"))), "gpus: device id '0' appears more than once"),
    (lambda: Capacity(gpus=(GpuDevice(""),)), "gpus: a device id must not be empty"),
    (lambda: Capacity(executors={"vm"}), "executors: 'vm' is not a valid ExecutorKind"),
])
def test_a_capacity_that_cannot_be_accounted_is_refused_naming_the_field(capacity: object, message: str) -> None:
    with pytest.raises(InvalidCapacity, match=message):
        capacity()  # type: ignore[operator]


def test_asks_round_cores_up_and_offers_round_them_down() -> None:
    assert millicores(0.3, round_up=True) == 300  # 0.3 * 1000 is 300.00000000000006
    assert millicores(0.0001, round_up=True) == 1
    assert millicores(0.0001, round_up=False) == 0
    assert millicores(2.9999, round_up=False) == 2999


@settings(max_examples=200)
@given(total=st.integers(0, 10**15), fraction=st.floats(0, 1), at_most=st.none() | st.integers(0, 10**15))
def test_an_offer_never_exceeds_the_machine_or_the_limit(total: int, fraction: float, at_most: int | None) -> None:
    offered = OnboardingLimits(ram=Share(fraction=fraction, at_most=at_most)).apply(Capacity(ram=total)).ram
    assert 0 <= offered <= total
    assert offered <= Fraction(total) * Fraction(fraction)
    assert at_most is None or offered <= at_most


def test_the_solver_sees_cores_and_the_gpus_themselves() -> None:
    resources = MACHINE.as_resources()
    assert resources.cpu == 8.0 and resources.ram == 32 * GiB
    assert resources.gpus == (Gpu("nvidia", "T4", 16 * GiB), Gpu("nvidia", "A100", 80 * GiB))
    assert MACHINE.executor_names == {"docker", "process"}
