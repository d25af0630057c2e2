"""Whose turn it is: link peers served by the node's time they have used."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from dms.net._turns import FairTurns


def serve(turns: FairTurns, costs: dict[str, float], count: int) -> Counter[str]:
    """`count` turns to peers that always have more waiting, each charged its cost."""
    served: Counter[str] = Counter()
    for _ in range(count):
        peer = turns.popleft()
        served[peer] += 1
        turns.charge(peer, costs[peer])
        turns.append(peer)
    return served


def test_uncharged_peers_take_turns_round_robin_in_arrival_order():
    turns = FairTurns()
    for peer in "abc":
        turns.append(peer)
    order = []
    for _ in range(6):
        peer = turns.popleft()
        order.append(peer)
        turns.append(peer)
    assert order == list("abcabc")


def test_a_peer_whose_deliveries_cost_ten_times_as_much_gets_a_tenth_of_the_turns():
    """Round robin gave a stranger whose requests cost 2 ms (a fresh DID, two signatures)
    as many turns as a client whose cost 0.2 ms: a few such links took the node's time."""
    turns = FairTurns(item_cost=0.0)
    turns.append("stranger")
    turns.append("client")
    served = serve(turns, {"stranger": 0.002, "client": 0.0002}, 1100)
    assert 95 <= served["stranger"] <= 105
    assert served["client"] >= 995


def test_being_idle_earns_no_credit_but_a_short_pause_does_not_shed_debt():
    turns = FairTurns(item_cost=0.001)
    turns.append("busy")
    serve(turns, {"busy": 0.0}, 100)  # the clock is now at about 0.1
    turns.append("newcomer")  # starts now, not at 0: no burst of a hundred turns
    served = serve(turns, {"busy": 0.0, "newcomer": 0.0}, 10)
    assert served == Counter({"busy": 5, "newcomer": 5})
    heavy = turns.popleft()
    turns.charge(heavy, 0.05)
    turns.rest(heavy)  # pauses with its debt...
    turns.append(heavy)  # ...and comes back behind the other by fifty turns
    assert serve(turns, {"busy": 0.0, "newcomer": 0.0}, 40).get(heavy, 0) == 0


def test_one_delivery_is_charged_at_most_max_charge():
    turns = FairTurns(item_cost=0.001, max_charge=0.01)
    turns.append("stalled")
    turns.append("other")
    turns.charge(turns.popleft(), 60.0)  # a consumer that waited a minute
    turns.append("stalled")
    assert serve(turns, {"stalled": 0.0, "other": 0.0}, 12)["stalled"] >= 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 0.02), min_size=2, max_size=6),
       st.lists(st.integers(0, 5), max_size=300))
def test_peers_that_always_wait_use_the_node_alike_within_one_delivery(costs, noise):
    turns = FairTurns(item_cost=0.0, max_charge=0.02)
    peers = [f"p{n}" for n in range(len(costs))]
    used = dict.fromkeys(peers, 0.0)
    for peer in peers:
        turns.append(peer)
    for n in noise:
        peer = turns.popleft()
        cost = costs[peers.index(peer)] + n * 0.001
        turns.charge(peer, cost)
        used[peer] += min(cost, 0.02)
        turns.append(peer)
    assert max(used.values()) - min(used.values()) <= 0.02 + 0.005 + 1e-9
