from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dms.ensemble._units import (
    UnitError,
    format_size,
    parse_bandwidth,
    parse_cpu,
    parse_duration,
    parse_rtt,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1, 1024**3),  # bare numbers are GiB, as in NuNet files
        (0.5, 512 * 1024**2),
        ("2", 2 * 1024**3),
        ("0.5", 512 * 1024**2),
        ("512Mi", 512 * 1024**2),
        ("2G", 2 * 10**9),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("100MB", 100 * 10**6),
        ("1024B", 1024),
        ("4Ki", 4096),
        ("1Ti", 1024**4),
    ],
)
def test_sizes_normalize_to_bytes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["512Mb", "lots", "1.2.3G", True, [1], "inf", float("nan")])
def test_bad_sizes_name_what_would_be_valid(text: object) -> None:
    with pytest.raises(UnitError, match=r"512Mi|MB"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=2**62))
def test_formatted_sizes_read_back_exactly(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(("text", "cores"), [(2, 2.0), (0.5, 0.5), ("500m", 0.5), ("1.5", 1.5)])
def test_cpu_accepts_cores_and_millicores(text: object, cores: float) -> None:
    assert parse_cpu(text) == cores


def test_cpu_rejects_other_units() -> None:
    with pytest.raises(UnitError, match="millicores"):
        parse_cpu("2 cores")


@pytest.mark.parametrize(
    ("text", "seconds"), [(5, 5.0), ("500ms", 0.5), ("10s", 10.0), ("5m", 300.0), ("1m30s", 90.0)]
)
def test_durations_are_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "ms"), [(100, 100.0), ("10ms", 10.0), ("0.5s", 500.0), ("250us", 0.25)])
def test_rtt_is_milliseconds(text: object, ms: float) -> None:
    assert parse_rtt(text) == pytest.approx(ms)


@pytest.mark.parametrize(
    ("text", "bits"),
    [(1000, 1000), ("100Mbps", 10**8), ("1Gbit/s", 10**9), ("10MB/s", 8 * 10**7), ("64kbps", 64000)],
)
def test_bandwidth_is_bits_per_second(text: object, bits: int) -> None:
    assert parse_bandwidth(text) == bits


@pytest.mark.parametrize("parse", [parse_duration, parse_rtt, parse_bandwidth])
def test_garbage_quantities_raise_unit_errors(parse: object) -> None:
    with pytest.raises(UnitError):
        parse("soon")  # type: ignore[operator]


def test_the_largest_size_is_the_wire_bound() -> None:
    assert parse_size(f"{2**63 - 1}B") == 2**63 - 1
    assert parse_size("-1Gi") == -(2**30)  # the sign is judged by the resource rules


@pytest.mark.parametrize("text", [f"{2**63}B", "1e400", "99999999999999999999999Ti", 1e300, "8589934592"])  # 2**33 GiB is 2**63 B
def test_sizes_above_the_wire_bound_name_the_value_and_the_bound(text: object) -> None:
    with pytest.raises(UnitError, match=r"is more than the largest size in bytes: 2\*\*63-1"):
        parse_size(text)


def test_overflowing_cpu_is_not_a_finite_quantity() -> None:
    with pytest.raises(UnitError, match="too large a number"):
        parse_cpu("1e400")


@pytest.mark.parametrize(("parse", "text"), [(parse_duration, "1e400s"), (parse_duration, "1e400"), (parse_rtt, "1e30h")])
def test_durations_must_fit_64_bit_nanoseconds(parse: object, text: str) -> None:
    with pytest.raises(UnitError, match=r"largest duration in nanoseconds: 2\*\*63-1"):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize("text", ["1e400bps", f"{2**63}", 1e300])
def test_bandwidth_must_fit_64_bits(text: object) -> None:
    with pytest.raises(UnitError, match=r"largest bandwidth in bits/s: 2\*\*63-1"):
        parse_bandwidth(text)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_yaml_numbers_are_refused(value: float) -> None:
    with pytest.raises(UnitError, match="not a finite number"):
        parse_cpu(value)
