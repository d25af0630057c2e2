"""The bid window: enough candidates per node, one answer per provider, bounded memory,
answers set aside with a counted reason, and a failure that names who declined why."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.ensemble._requirements import EnsembleRequirements, NodeRequirements, Resources
from dms.orchestrator import (
    BidWindow,
    BidWindowLimits,
    DeploymentUnplaceable,
    IgnoreReason,
    InvalidSetting,
    NodeDecline,
)
from dms.orchestrator.placement import Bid, Reason

GiB = 1 << 30
R = IgnoreReason


def node(name: str, ram: int = 1, **kw: object) -> NodeRequirements:
    return NodeRequirements(name, Resources(cpu=1, ram=ram * GiB), frozenset({"docker"}), **kw)  # type: ignore[arg-type]


def bid(peer: str, nodes: set[str] | None = None, ram: int = 8) -> Bid:
    return Bid(peer, Resources(cpu=8, ram=ram * GiB), frozenset({"docker"}), nodes=nodes)


REQUIREMENTS = EnsembleRequirements(
    nodes=(node("web", redundancy=1), node("db", ram=4)), exclude_peers=frozenset({"banned"})
)


def test_the_window_has_enough_when_every_node_has_one_plus_redundancy_candidates() -> None:
    window = BidWindow(REQUIREMENTS)
    window.open_round(now=0)
    window.add_bid(bid("a", {"web", "db"}))
    assert not window.enough()
    assert window.shortfall() == {"web": (1, 2)}
    window.add_bid(bid("b", {"web"}))
    assert window.enough() and window.shortfall() == {}
    assert window.should_close(now=0.1)  # early: the round ends at 2 s


def test_a_configured_minimum_waits_for_more_candidates() -> None:
    window = BidWindow(REQUIREMENTS, minimum_candidates=3)
    for peer in "abc":
        window.add_bid(bid(peer))
    assert window.enough()
    assert BidWindow(REQUIREMENTS, minimum_candidates=4).shortfall() == {
        "web": (0, 4), "db": (0, 4)}  # fmt: skip


def test_a_pinned_node_needs_its_pinned_peer_among_the_candidates() -> None:
    window = BidWindow(EnsembleRequirements(nodes=(node("db", peer="home"),)))
    window.add_bid(bid("a"))
    window.add_bid(bid("b"))
    assert window.shortfall() == {"db": (2, 1)}
    window.add_bid(bid("home", {"db"}))
    assert window.enough()


def test_a_newer_bid_from_a_provider_replaces_its_older_one() -> None:
    window = BidWindow(REQUIREMENTS)
    window.add_bid(bid("a", {"web", "db"}))
    window.add_bid(bid("a", {"web"}, ram=2))
    assert window.bids == (bid("a", {"web"}, ram=2),)
    assert window.candidates("db") == frozenset()


def test_the_newest_statement_about_a_node_wins_between_bid_and_decline() -> None:
    window = BidWindow(REQUIREMENTS)
    window.add_bid(bid("a"))  # every node
    no_db = NodeDecline("a", "db", ["ram: 2 GiB free, 4 GiB asked"])
    window.add_decline(no_db)
    assert window.bids == (bid("a", {"web"}),)
    assert window.declines == (no_db,)
    window.add_decline(NodeDecline("a", "web", ["cpu: 0.5 free, 1 asked"]))
    assert window.bids == () and window.candidates("web") == frozenset()
    window.add_bid(bid("a", {"db"}))
    assert window.candidates("db") == {"a"}
    assert [d.node for d in window.declines] == ["web"]


def test_answers_for_unknown_nodes_or_from_excluded_peers_are_set_aside_and_counted() -> None:
    window = BidWindow(REQUIREMENTS, exclude=["failed-before"])
    assert window.add_bid(bid("a", {"web", "cache"})) is R.UNKNOWN_NODE
    assert window.add_bid(bid("a", set())) is R.NO_NODE
    assert window.add_decline(NodeDecline("a", "cache", ["no"])) is R.UNKNOWN_NODE
    assert window.add_bid(bid("banned")) is R.EXCLUDED_PEER
    assert window.add_bid(bid("failed-before")) is R.EXCLUDED_PEER
    assert window.add_decline(NodeDecline("banned", "web", ["no"])) is R.EXCLUDED_PEER
    assert window.bids == () and window.declines == ()
    assert window.ignored == {R.UNKNOWN_NODE: 2, R.NO_NODE: 1, R.EXCLUDED_PEER: 3}


def test_excluding_a_provider_drops_what_it_said_and_what_it_says_later() -> None:
    window = BidWindow(REQUIREMENTS)
    window.add_bid(bid("a"))
    window.add_bid(bid("b"))
    window.exclude("a", "commit failed: lease refused")
    assert [b.peer for b in window.bids] == ["b"] and window.candidates("web") == {"b"}
    assert window.add_bid(bid("a")) is R.EXCLUDED_PEER
    assert window.excluded == {"a", "banned"}


def test_rounds_keep_earlier_answers_and_close_at_their_end() -> None:
    window = BidWindow(REQUIREMENTS, round_seconds=2)
    assert window.open_round(now=10) == 12
    window.add_bid(bid("a"))
    assert not window.should_close(now=11.9) and window.should_close(now=12)
    assert window.open_round(now=12) == 14 and window.round == 2
    assert [b.peer for b in window.bids] == ["a"]


def test_a_new_provider_past_the_limit_is_set_aside_but_held_ones_can_update() -> None:
    window = BidWindow(REQUIREMENTS, limits=BidWindowLimits(max_providers=2))
    window.add_bid(bid("a"))
    window.add_bid(bid("b"))
    assert window.add_bid(bid("c")) is R.TOO_MANY_PROVIDERS
    assert window.add_decline(NodeDecline("c", "db", ["no"])) is R.TOO_MANY_PROVIDERS
    assert window.add_bid(bid("a", {"web"})) is None
    assert [b.peer for b in window.bids] == ["a", "b"] and window.providers == 2


def test_an_answer_too_large_to_keep_is_set_aside_and_the_older_one_stays() -> None:
    window = BidWindow(REQUIREMENTS, limits=BidWindowLimits(max_provider_bytes=1024))
    window.add_bid(bid("a"))
    essay = NodeDecline("a", "db", ["x" * 2000])
    assert window.add_decline(essay) is R.TOO_LARGE
    assert window.bids == (bid("a"),) and window.declines == ()
    huge = Bid("b", Resources(cpu=1, ram=GiB), frozenset(f"e{i}" for i in range(1000)))
    assert window.add_bid(huge) is R.TOO_LARGE


def test_solving_uses_the_held_bids_and_the_exclusions() -> None:
    window = BidWindow(REQUIREMENTS)
    for peer in "abc":
        window.add_bid(bid(peer))
    window.exclude("a", "commit failed")
    placement = window.solve()
    assert "a" not in placement.assignment.providers_of("web")
    assert set(placement.assignment.providers_of("web")) == {"b", "c"}


def test_an_unplaceable_ensemble_is_explained_with_the_providers_declines() -> None:
    window = BidWindow(REQUIREMENTS)
    window.open_round(now=0)
    window.open_round(now=2)
    window.add_bid(bid("a", {"web"}))
    window.add_bid(bid("b", {"web"}))
    window.add_decline(NodeDecline("a", "db", ["ram: 2 GiB free, 4 GiB asked"]))
    window.add_decline(NodeDecline("b", "db", ["executor: docker missing", "gpu: 0 free, 1 asked"]))
    window.add_bid(bid("banned"))
    window.add_bid(bid("c"))
    window.exclude("c", "commit failed: no answer within 5 s")
    with pytest.raises(DeploymentUnplaceable) as caught:
        window.solve()
    failure = caught.value
    assert failure.explanation.reason is Reason.NODE_WITHOUT_CANDIDATES
    text = str(failure)
    assert text.startswith("cannot place the ensemble: no suitable providers for db\n")
    assert text.endswith(
        "declines:\n"
        "  provider a: node db: ram: 2 GiB free, 4 GiB asked\n"
        "  provider b: node db: executor: docker missing; gpu: 0 free, 1 asked\n"
        "excluded:\n"
        "  provider banned: excluded by the ensemble\n"
        "  provider c: commit failed: no answer within 5 s\n"
        "ignored answers: 1 from excluded peers\n"
        "bids requested 2 times"
    )
    assert isinstance(failure.__cause__, Exception)  # the solver's Unplaceable


def test_the_failure_text_spells_out_a_bounded_number_of_declines() -> None:
    window = BidWindow(REQUIREMENTS)
    for i in range(100):
        window.add_decline(NodeDecline(f"p{i:03}", "db", ["ram: " + "x" * 500]))
    with pytest.raises(DeploymentUnplaceable) as caught:
        window.solve()
    failure = caught.value
    assert len(failure.declines) == 100
    assert "  … and 60 more declines" in str(failure)
    assert max(len(line) for line in str(failure).splitlines()) < 250


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minimum_candidates": 0}, "minimum_candidates must be a whole number >= 1"),
        ({"round_seconds": 0}, "round_seconds must be a finite number of seconds > 0"),
    ],
)
def test_window_settings_out_of_range_are_refused_by_name(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidSetting, match=message):
        BidWindow(REQUIREMENTS, **kwargs)  # type: ignore[arg-type]


def test_window_limits_out_of_range_are_refused_by_name() -> None:
    with pytest.raises(InvalidSetting, match="max_bytes must be a whole number >= 1, got 0"):
        BidWindowLimits(max_bytes=0)


NODES = ("web", "db", "cache")
PEERS = ("a", "b", "c", "d")
answers = st.lists(
    st.one_of(
        st.tuples(st.just("bid"), st.sampled_from(PEERS),
                  st.one_of(st.none(), st.sets(st.sampled_from(NODES), min_size=1))),
        st.tuples(st.just("decline"), st.sampled_from(PEERS), st.sampled_from(NODES)),
    ),
    max_size=40,
)  # fmt: skip


@settings(max_examples=200)
@given(answers)
def test_each_provider_is_held_to_its_newest_statement_per_node(
    steps: list[tuple[str, str, object]],
) -> None:
    requirements = EnsembleRequirements(nodes=tuple(node(n) for n in NODES))
    window = BidWindow(requirements)
    offered: dict[str, set[str]] = {}
    declined: dict[str, set[str]] = {}
    for kind, peer, what in steps:
        if kind == "bid":
            nodes = set(NODES) if what is None else set(what)  # type: ignore[call-overload]
            window.add_bid(bid(peer, None if what is None else nodes))
            offered[peer] = nodes
            declined[peer] = declined.get(peer, set()) - nodes
        else:
            assert isinstance(what, str)
            window.add_decline(NodeDecline(peer, what, [f"{what}: short"]))
            offered[peer] = offered.get(peer, set()) - {what}
            declined.setdefault(peer, set()).add(what)
    for name in NODES:
        assert window.candidates(name) == {p for p, nodes in offered.items() if name in nodes}
    assert {b.peer: set(b.nodes or NODES) for b in window.bids} == {
        p: nodes for p, nodes in offered.items() if nodes}  # fmt: skip
    assert {(d.peer, d.node) for d in window.declines} == {
        (p, n) for p, nodes in declined.items() for n in nodes}  # fmt: skip
    assert window.enough() == all(window.candidates(n) for n in NODES)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from([f"p{i}" for i in range(12)]),
                          st.sampled_from(NODES), st.integers(0, 3000)), max_size=60))  # fmt: skip
def test_memory_stays_within_the_limits_whatever_providers_send(
    steps: list[tuple[str, str, int]],
) -> None:
    limits = BidWindowLimits(max_providers=8, max_bytes=6000, max_provider_bytes=2500)
    window = BidWindow(EnsembleRequirements(nodes=tuple(node(n) for n in NODES)), limits=limits)
    for peer, name, size in steps:
        if size % 2:
            window.add_decline(NodeDecline(peer, name, ["r" * size]))
        else:
            window.add_bid(Bid(peer, Resources(cpu=1), frozenset({"x" * size}), nodes={name}))
        assert window.bytes <= limits.max_bytes and window.providers <= limits.max_providers
    held = {b.peer for b in window.bids} | {d.peer for d in window.declines}
    assert len(held) == window.providers


def test_a_round_nobody_answered_says_what_providers_answer() -> None:
    window = BidWindow(REQUIREMENTS)
    window.open_round(now=0)
    with pytest.raises(DeploymentUnplaceable) as caught:
        window.solve()
    text = str(caught.value)
    assert "no provider answered: a provider answers only the bid requests of a market " \
           "whose root it anchors" in text
    assert text.endswith("bids requested once")
