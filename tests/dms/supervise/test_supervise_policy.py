import pytest

from dms.supervise import (
    CrashLoop,
    DependencyCycle,
    InvalidPolicy,
    NotRestarted,
    Recovery,
    RestartAfter,
    RestartIntensity,
    RestartPolicy,
    RestartTracker,
    SupervisorStrategy,
    start_order,
)


def test_tracker_reports_crash_loop_past_the_intensity() -> None:
    tracker = RestartTracker(RestartPolicy(intensity=RestartIntensity(max_restarts=2, period=10)))
    assert tracker.decide(Recovery.RESTART, 0, ran_for=1) == RestartAfter(1.0, 1)
    assert tracker.decide(Recovery.RESTART, 1, ran_for=1) == RestartAfter(2.0, 2)
    assert tracker.decide(Recovery.RESTART, 2, ran_for=1) == CrashLoop(restarts=2, period=10)


def test_restarts_outside_the_period_are_forgotten() -> None:
    tracker = RestartTracker(RestartPolicy(intensity=RestartIntensity(max_restarts=1, period=10)))
    assert isinstance(tracker.decide(Recovery.RESTART, 0, ran_for=1), RestartAfter)
    assert isinstance(tracker.decide(Recovery.RESTART, 11, ran_for=1), RestartAfter)


def test_stay_down_and_redeploy_are_not_restarts_and_do_not_count() -> None:
    tracker = RestartTracker(RestartPolicy(intensity=RestartIntensity(max_restarts=1, period=10)))
    assert tracker.decide(Recovery.STAY_DOWN, 0, ran_for=1) == NotRestarted(Recovery.STAY_DOWN)
    assert tracker.decide(Recovery.REDEPLOY, 1, ran_for=1) == NotRestarted(Recovery.REDEPLOY)
    assert tracker.total == 0
    assert tracker.decide(Recovery.RESTART, 2, ran_for=1) == RestartAfter(1.0, 1)


def test_a_long_healthy_run_resets_the_backoff() -> None:
    tracker = RestartTracker(RestartPolicy(reset_after=30))
    tracker.decide(Recovery.RESTART, 0, ran_for=1)
    tracker.decide(Recovery.RESTART, 5, ran_for=1)
    assert tracker.decide(Recovery.RESTART, 100, ran_for=60) == RestartAfter(1.0, 1)


def test_strategies_pick_the_children_to_restart_in_start_order() -> None:
    order = ["db", "api", "web"]
    assert SupervisorStrategy.ONE_FOR_ONE.affected(order, "api") == ["api"]
    assert SupervisorStrategy.ALL_FOR_ONE.affected(order, "api") == order
    assert SupervisorStrategy.REST_FOR_ONE.affected(order, "api") == ["api", "web"]


def test_start_order_follows_depends_on() -> None:
    assert start_order({"web": ["api"], "api": ["db"], "db": [], "cache": []}) == [
        "db",
        "cache",
        "api",
        "web",
    ]


def test_dependency_cycle_names_its_members() -> None:
    with pytest.raises(DependencyCycle, match="api, web"):
        start_order({"web": ["api"], "api": ["web"], "db": []})
    with pytest.raises(InvalidPolicy, match="web.depends_on: 'ghost'"):
        start_order({"web": ["ghost"]})
