"""The admission pipeline, sans-IO: replay, tampering, addressing, time bounds, forgery.

Messages are built by hand with `ucan.invoke` so each test controls exactly one fault;
`Admission.admit` is fed bytes and a clock reading, nothing else.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dms.actor import (
    DEFAULT_POLICY,
    REPLY,
    Accept,
    Admission,
    AdmissionPolicy,
    Drop,
    Refuse,
    ReplyIn,
    encode_message,
)
from ucan import Delegation, SigningKey, TrustContext, delegate, invoke, revoke

NOW = 1_700_000_000
OWNER = SigningKey.from_seed(b"\x01" * 32)  # the receiving node
CALLER = SigningKey.from_seed(b"\x02" * 32)
MIDDLE = SigningKey.from_seed(b"\x03" * 32)
ELSEWHERE = SigningKey.from_seed(b"\x04" * 32)  # an actor on some other node

quick = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ipld_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                         st.text(max_size=8), st.binary(max_size=8))
ipld_args = st.dictionaries(st.text(max_size=6), st.recursive(
    ipld_scalars, lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6), max_size=4)


def admission(policy: AdmissionPolicy = DEFAULT_POLICY) -> Admission:
    return Admission(TrustContext(OWNER.did), lambda did: did == OWNER.did, policy)


def request(chain: list[Delegation], *, command: str = "/shop/order",
            args: dict[str, Any] | None = None, audience: str = OWNER.did,
            issuer: SigningKey = CALLER, exp: int = NOW + 30) -> bytes:
    invocation = invoke(issuer, OWNER.did, command, args or {}, [d.cid for d in chain],
                        audience=audience, expiration=exp, issued_at=NOW)
    return encode_message(invocation, chain)


def direct_grant(**options: Any) -> list[Delegation]:
    options.setdefault("expiration", NOW + 3600)
    return [delegate(OWNER, CALLER.did, "/shop", **options)]


def two_hop_grant() -> list[Delegation]:
    first = delegate(OWNER, MIDDLE.did, "/shop", expiration=NOW + 3600)
    second = delegate(MIDDLE, CALLER.did, "/shop/order", subject=OWNER.did,
                      expiration=NOW + 600)
    return [first, second]


# -- replay -------------------------------------------------------------------------------


@quick
@given(args=ipld_args, two_hops=st.booleans(), later=st.integers(0, 89))
def test_replay_of_an_accepted_message_is_dropped(args, two_hops, later):
    gate = admission()
    data = request(two_hop_grant() if two_hops else direct_grant(), args=args)
    assert isinstance(gate.admit(data, now=NOW), Accept)
    assert gate.admit(data, now=NOW + later) == Drop("replayed")
    assert gate.metrics["dropped.replayed"] == 1
    assert gate.metrics["accepted"] == 1


def test_replay_is_dropped_until_the_message_expires_beyond_the_skew():
    gate = admission(AdmissionPolicy(skew=60))
    data = request(direct_grant(), exp=NOW + 30)
    assert isinstance(gate.admit(data, now=NOW), Accept)
    assert gate.admit(data, now=NOW + 90) == Drop("replayed")
    # Past exp + skew the replay cache may forget it, because time bounds refuse it.
    assert not isinstance(gate.admit(data, now=NOW + 91), Accept)


def test_a_replayed_reply_is_dropped():
    gate = admission()
    invocation = invoke(CALLER, CALLER.did, REPLY, {"ran": direct_grant()[0].cid,
                                                    "out": {"ok": 1}},
                        audience=OWNER.did, expiration=NOW + 30)
    data = encode_message(invocation)
    assert isinstance(gate.admit(data, now=NOW), ReplyIn)
    assert gate.admit(data, now=NOW) == Drop("replayed")


# -- tampering ----------------------------------------------------------------------------


@quick
@given(data=st.data())
def test_a_flipped_byte_is_never_accepted(data):
    message = request(two_hop_grant(), args={"amount": 7})
    position = data.draw(st.integers(0, len(message) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = bytearray(message)
    tampered[position] ^= mask
    verdict = admission().admit(bytes(tampered), now=NOW)
    assert not isinstance(verdict, Accept), f"byte {position} ^ {mask:#x} was accepted"


def test_truncated_messages_are_never_accepted():
    message = request(direct_grant())
    for variant in (message[:-1], message[: len(message) // 2], message[:1], b""):
        assert not isinstance(admission().admit(variant, now=NOW), Accept)


# -- addressing, time bounds, forgery -----------------------------------------------------


def test_a_message_for_an_actor_that_is_not_here_is_refused_as_invalid_audience():
    gate = admission()
    verdict = gate.admit(request(direct_grant(), audience=ELSEWHERE.did), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "InvalidAudience"
    assert ELSEWHERE.did in verdict.error.message
    assert gate.metrics["refused.InvalidAudience"] == 1


def test_a_message_expired_beyond_the_skew_is_refused_as_expired():
    gate = admission(AdmissionPolicy(skew=60))
    verdict = gate.admit(request(direct_grant(), exp=NOW - 61), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "Expired"
    assert gate.metrics["refused.Expired"] == 1


def test_a_message_that_lives_longer_than_the_maximum_ttl_is_refused():
    gate = admission(AdmissionPolicy(skew=60, max_ttl=600))
    verdict = gate.admit(request(direct_grant(), exp=NOW + 661), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "Expired"
    assert "600" in verdict.error.message


def test_a_chain_that_is_not_yet_valid_is_refused_as_too_early():
    gate = admission()
    chain = direct_grant(not_before=NOW + 120)
    verdict = gate.admit(request(chain), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "TooEarly"
    assert gate.metrics["refused.TooEarly"] == 1
    # The same grant works once its time has come (a fresh message: no replay).
    assert isinstance(gate.admit(request(chain, exp=NOW + 150), now=NOW + 120), Accept)


def test_a_chain_expired_beyond_the_skew_is_refused_as_expired():
    gate = admission(AdmissionPolicy(skew=60))
    verdict = gate.admit(request(direct_grant(expiration=NOW - 61)), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "Expired"


def test_clock_skew_is_tolerated_on_the_message_and_on_its_chain_alike():
    gate = admission(AdmissionPolicy(skew=60))
    late = request(direct_grant(expiration=NOW - 30), exp=NOW - 30)
    assert isinstance(gate.admit(late, now=NOW), Accept)


def test_a_refused_copy_with_damaged_proofs_does_not_burn_the_genuine_message():
    gate = admission()
    chain = direct_grant()
    genuine = invoke(CALLER, OWNER.did, "/shop/order", {}, [d.cid for d in chain],
                     audience=OWNER.did, expiration=NOW + 30)
    stripped = encode_message(genuine, [])  # same invocation, proofs withheld
    assert isinstance(gate.admit(stripped, now=NOW), Refuse)
    assert isinstance(gate.admit(encode_message(genuine, chain), now=NOW), Accept)
    assert gate.admit(encode_message(genuine, chain), now=NOW) == Drop("replayed")


def test_a_revoked_chain_is_refused_as_revoked():
    gate = admission()
    chain = two_hop_grant()
    gate.trust.revocations.add(revoke(OWNER, chain[1]))  # revoked from above: counts
    verdict = gate.admit(request(chain), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "Revoked"


def test_a_forged_signature_is_dropped_and_counted_without_an_answer():
    gate = admission()
    genuine = invoke(CALLER, OWNER.did, "/shop/order", {}, [d.cid for d in direct_grant()],
                     audience=OWNER.did, expiration=NOW + 30)
    # The same payload signed by somebody else, still claiming to be CALLER.
    forger = invoke(ELSEWHERE, OWNER.did, "/shop/order", {}, list(genuine.prf),
                    audience=OWNER.did, expiration=NOW + 30, nonce=genuine.nonce)
    envelope = bytearray(genuine.envelope)
    signature_at = envelope.index(genuine.signature)
    envelope[signature_at:signature_at + 64] = forger.signature
    forged = type(genuine).decode(bytes(envelope))
    verdict = gate.admit(encode_message(forged, direct_grant()), now=NOW)
    assert verdict == Drop("forged")
    assert gate.metrics["dropped.forged"] == 1
    assert gate.metrics["accepted"] == 0


def test_a_well_signed_request_without_proof_is_refused_naming_the_command():
    gate = admission()
    verdict = gate.admit(request([]), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "InvalidClaim"
    assert "/shop/order" in verdict.error.message


def test_a_unicast_message_without_an_audience_is_refused():
    gate = admission()
    chain = direct_grant()
    broadcast_shaped = invoke(CALLER, OWNER.did, "/shop/order", {}, [d.cid for d in chain],
                              expiration=NOW + 30)
    verdict = gate.admit(encode_message(broadcast_shaped, chain), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "InvalidAudience"


def test_a_message_in_any_container_but_raw_bytes_is_dropped_unread():
    from ucan.container import BASE64_GZIP, encode_container

    gate = admission()
    chain = direct_grant()
    genuine = invoke(CALLER, OWNER.did, "/shop/order", {}, [d.cid for d in chain],
                     audience=OWNER.did, expiration=NOW + 30)
    gzipped = encode_container([genuine.envelope, *(d.envelope for d in chain)], BASE64_GZIP)
    assert gate.admit(gzipped, now=NOW) == Drop("malformed")


def test_the_rate_limiter_forgets_the_least_recent_sender_not_everyone():
    from dms.actor import RateLimit, RateLimiter

    limiter = RateLimiter(RateLimit(rate=0.0, burst=1.0), max_keys=2)
    assert limiter.allow("busy", "/x", 0.0)
    assert limiter.allow("other", "/x", 0.0)
    assert limiter.allow("third", "/x", 0.0)  # evicts "busy", the least recent
    assert not limiter.allow("third", "/x", 0.0)
    assert not limiter.allow("other", "/x", 0.0)  # still remembered: still limited
