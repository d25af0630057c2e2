"""Policy evaluation is budgeted per link peer: a grant holder's heavy policies cost
the node at most a bounded share of its time, and other peers' messages still pass."""

from __future__ import annotations

from dms.actor import Accept, Admission, Drop, Refuse, encode_message
from ucan import MatchError, SigningKey, TrustContext, delegate, invoke

NOW = 1_700_000_000
OWNER, HOLDER, HEAVY, OTHER = (SigningKey.from_seed(bytes([n]) * 32) for n in range(41, 45))
HEAVY_POLICY = [["all", ".items", [">=", ".", 0]]] * 40  # 40 walks of 100k items each


def admission() -> Admission:
    return Admission(TrustContext(OWNER.did), lambda did: did == OWNER.did)


def heavy_request(n: int) -> bytes:
    grant = delegate(OWNER, HOLDER.did, "/calc", expiration=NOW + 3600)
    redelegated = delegate(HOLDER, HEAVY.did, "/calc", subject=OWNER.did,
                           policy=HEAVY_POLICY, expiration=NOW + 3600)
    invocation = invoke(HEAVY, OWNER.did, "/calc/sum", {"items": list(range(100_000))},
                        [grant.cid, redelegated.cid], audience=OWNER.did, expiration=NOW + 30,
                        issued_at=NOW, nonce=n.to_bytes(4, "big"))
    return encode_message(invocation, [grant, redelegated])


def light_request() -> bytes:
    grant = delegate(OWNER, OTHER.did, "/calc", expiration=NOW + 3600)
    invocation = invoke(OTHER, OWNER.did, "/calc/sum", {"items": [1, 2]}, [grant.cid],
                        audience=OWNER.did, expiration=NOW + 30, issued_at=NOW)
    return encode_message(invocation, [grant])


def test_a_link_peers_heavy_policies_are_evaluated_only_within_its_step_budget() -> None:
    gate = admission()
    verdicts = [gate.admit(heavy_request(n), now=NOW, via="hog") for n in range(6)]
    evaluated = [v for v in verdicts if isinstance(v, Refuse)]
    assert 1 <= len(evaluated) <= 2  # the burst: two budgets' worth of steps
    assert all(isinstance(v.error, MatchError) for v in evaluated)
    assert verdicts[len(evaluated):] == [Drop("policy-budget")] * (6 - len(evaluated))
    assert isinstance(gate.admit(light_request(), now=NOW, via="other"), Accept)
    # The budget refills at 50k steps a second: one more heavy message in two seconds.
    assert isinstance(gate.admit(heavy_request(99), now=NOW + 2, via="hog"), Refuse)


def test_light_policies_from_one_peer_never_run_out_of_steps() -> None:
    gate = admission()
    grant = delegate(OWNER, OTHER.did, "/calc", expiration=NOW + 3600,
                     policy=[["<=", ".n", 1000]])
    for n in range(500):
        invocation = invoke(OTHER, OWNER.did, "/calc/sum", {"n": n}, [grant.cid],
                            audience=OWNER.did, expiration=NOW + 30, issued_at=NOW)
        assert isinstance(gate.admit(encode_message(invocation, [grant]), now=NOW,
                                     via="other"), Accept)
