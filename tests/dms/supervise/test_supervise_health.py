import pytest

from dms.supervise import (
    CommandProbe,
    ExpectedResponse,
    HealthCheck,
    HealthLedger,
    HealthState,
    HttpProbe,
    InvalidHealthCheck,
    ProbeResult,
    TcpProbe,
)
from dms.supervise._health import MAX_PATTERN
from dms.workload import ResponseMatch


def result(ok: bool, at: float) -> ProbeResult:
    return ProbeResult(ok=ok, at=at, duration=0.0)


def test_unhealthy_only_after_consecutive_retries() -> None:
    ledger = HealthLedger(HealthCheck(TcpProbe("127.0.0.1:1"), retries=3), started_at=0)
    assert ledger.record(result(True, 1)) is HealthState.HEALTHY
    assert ledger.record(result(False, 2)) is None
    assert ledger.record(result(True, 3)) is None  # a success resets the count
    assert ledger.record(result(False, 4)) is None
    assert ledger.record(result(False, 5)) is None
    assert ledger.record(result(False, 6)) is HealthState.UNHEALTHY


def test_failures_in_the_start_period_do_not_count() -> None:
    check = HealthCheck(TcpProbe("127.0.0.1:1"), retries=1, start_period=10)
    ledger = HealthLedger(check, started_at=0)
    assert ledger.record(result(False, 5)) is None
    assert ledger.next_delay(5) == check.start_interval
    assert ledger.record(result(False, 11)) is HealthState.UNHEALTHY


def test_without_a_start_period_probes_come_one_interval_apart_from_the_start() -> None:
    # docker's semantics: a service slow to bind is not probed at start_interval cadence
    check = HealthCheck(TcpProbe("127.0.0.1:1"), interval=10)
    ledger = HealthLedger(check, started_at=0)
    assert ledger.next_delay(0) == 10
    assert ledger.record(result(False, 10)) is None
    assert ledger.next_delay(10) == 10


def test_start_interval_cadence_ends_with_the_start_period_or_the_first_success() -> None:
    check = HealthCheck(TcpProbe("127.0.0.1:1"), interval=10, start_period=5, start_interval=1)
    ledger = HealthLedger(check, started_at=0)
    assert ledger.next_delay(0) == 1
    assert ledger.next_delay(6) == 10  # start period over
    assert ledger.record(result(True, 2)) is HealthState.HEALTHY
    assert ledger.next_delay(3) == 10


def test_history_is_bounded() -> None:
    ledger = HealthLedger(HealthCheck(TcpProbe("127.0.0.1:1"), history=3), started_at=0)
    for at in range(10):
        ledger.record(result(True, at))
    assert [r.at for r in ledger.history] == [7, 8, 9]


def test_bad_definitions_name_their_field() -> None:
    with pytest.raises(InvalidHealthCheck, match="healthcheck.endpoint"):
        HttpProbe("127.0.0.1:80/health")
    with pytest.raises(InvalidHealthCheck, match="healthcheck.endpoint"):
        TcpProbe("localhost")
    with pytest.raises(InvalidHealthCheck, match="healthcheck.exec"):
        CommandProbe(())
    with pytest.raises(InvalidHealthCheck, match="healthcheck.retries"):
        HealthCheck(TcpProbe("127.0.0.1:1"), retries=0)


def test_string_match_strips_both_sides_and_compares_whole() -> None:
    expected = ExpectedResponse(" ready\n", ResponseMatch.STRING)
    assert expected.matches("ready")
    assert expected.matches("\tready \r\n")
    assert not expected.matches("ready now")
    assert not expected.matches("not ready")


def test_contains_match_is_a_substring_test() -> None:
    assert ExpectedResponse("ok").matches("status: ok!")
    assert not ExpectedResponse("ok").matches("OK")


def test_regex_match_searches_anywhere_and_is_bounded() -> None:
    expected = ExpectedResponse(r"v\d+\.\d+", ResponseMatch.REGEX)
    assert expected.matches("running v1.27 since boot")
    assert not expected.matches("running vX")
    with pytest.raises(InvalidHealthCheck, match=f"exceeds {MAX_PATTERN}"):
        ExpectedResponse("a" * (MAX_PATTERN + 1), ResponseMatch.REGEX)
    with pytest.raises(InvalidHealthCheck, match="is not a regex"):
        ExpectedResponse("(unclosed", ResponseMatch.REGEX)
    # the bound applies to regexes only: a long literal is fine
    assert ExpectedResponse("a" * (MAX_PATTERN + 1)).matches("a" * (MAX_PATTERN + 1))


def test_script_probe_needs_a_script() -> None:
    with pytest.raises(InvalidHealthCheck, match="healthcheck.script"):
        CommandProbe.script("  \n")
