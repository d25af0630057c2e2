"""The trust context's caches hold a byte bound as well as an entry bound, and forget
what concerns only long-expired delegations; forgetting never makes it accept what it
refused (a forgotten entry is validated again in full)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from ucan import Expired, Revoked, SigningKey, TrustContext, delegate, invoke, revoke
from ucan.trust import DECODED_OVERHEAD, DecodedCache, ProvenChains, VouchedDelegations, _Proven

NOW = 1_800_000_000
GRACE = 30
OWNER, MIDDLE, CALLER = (SigningKey.generate() for _ in range(3))


def chain(expiration: int | None = NOW + 100, middle: SigningKey = MIDDLE) -> list:  # type: ignore[type-arg]
    first = delegate(OWNER, middle.did, "/shop", expiration=expiration)
    second = delegate(middle, CALLER.did, "/shop/order", subject=OWNER.did,
                      expiration=expiration)
    return [first, second]


def order(proofs: list, exp: int = NOW + 60):  # type: ignore[no-untyped-def,type-arg]
    return invoke(CALLER, OWNER.did, "/shop/order", {}, [d.cid for d in proofs],
                  expiration=exp)


def heap_growth(fill) -> int:  # type: ignore[no-untyped-def]
    """Bytes still allocated after `fill()` (what the cache kept)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fill()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_proven_chains_hold_their_byte_bound_in_bytes_really_kept() -> None:
    cache = ProvenChains(capacity=10**6, max_bytes=200_000)

    def fill() -> None:
        for n in range(300):
            cache.put((n,), _Proven(tuple(chain(NOW + n)), None, NOW + n, 0))

    kept = heap_growth(fill)
    assert cache.bytes <= cache.max_bytes
    assert 0 < len(cache) < 300
    assert kept <= cache.max_bytes  # the charged cost is no underestimate


def test_proven_chains_hold_their_entry_bound() -> None:
    cache = ProvenChains(capacity=8, max_bytes=10**9)
    proofs = tuple(chain())
    for n in range(100):
        cache.put((n,), _Proven(proofs, None, None, 0))
    assert len(cache) == 8 and cache.get((99,)) is not None and cache.get((0,)) is None


def test_proven_chains_forget_only_chains_past_their_window_and_the_grace() -> None:
    cache = ProvenChains()
    proofs = tuple(chain())
    cache.put(("old",), _Proven(proofs, None, NOW, 0))
    cache.put(("recent",), _Proven(proofs, None, NOW + GRACE, 0))
    cache.put(("forever",), _Proven(proofs, None, None, 0))
    assert cache.forget_expired(NOW + GRACE + 1, GRACE) == 1
    assert cache.get(("old",)) is None
    assert cache.get(("recent",)) is not None and cache.get(("forever",)) is not None
    assert cache.bytes == 2 * _Proven(proofs, None, None, 0).cost


def test_vouched_delegations_hold_their_byte_bound_in_bytes_really_kept() -> None:
    vouched = VouchedDelegations(capacity=10**6, max_bytes=100_000)
    chains = [chain(NOW + n, middle=SigningKey.generate()) for n in range(200)]

    def fill() -> None:
        for proofs in chains:
            vouched.vouch(proofs)

    kept = heap_growth(fill)
    assert vouched.bytes <= vouched.max_bytes
    assert 0 < len(vouched) < 400
    assert kept <= vouched.max_bytes


def test_vouched_delegations_forget_only_delegations_expired_past_the_grace() -> None:
    vouched = VouchedDelegations()
    old, recent, forever = chain(NOW), chain(NOW + GRACE), chain(None)
    for proofs in (old, recent, forever):
        vouched.vouch(proofs)
    gone = vouched.forget_expired(NOW + GRACE + 1, GRACE)
    assert set(gone) == {d.cid for d in old}
    assert not vouched.revocable_by(old[1].cid, MIDDLE.did)
    assert vouched.revocable_by(recent[1].cid, MIDDLE.did)
    assert vouched.revocable_by(forever[1].cid, MIDDLE.did)
    assert vouched.expiry(recent[1].cid) == NOW + GRACE and len(vouched) == 4


def test_the_decoded_cache_forgets_expired_delegations() -> None:
    cache = DecodedCache()
    old, forever = chain(NOW), chain(None)
    for d in (*old, *forever):
        cache.add(d)
    assert cache.forget_expired(NOW + GRACE + 1, GRACE) == 2
    assert cache.get(old[0].envelope) is None and cache.get(forever[0].envelope) is not None
    assert cache.bytes == sum(len(d.envelope) + DECODED_OVERHEAD for d in forever)


def test_forgetting_expired_delegations_leaves_every_cache_empty_of_them() -> None:
    trust, proofs = TrustContext(OWNER.did), chain(NOW + 100)
    trust.authorize(order(proofs), proofs, now=NOW)
    assert len(trust.vouched) == len(trust.verified) == len(trust.decoded) == 2
    assert trust.forget_expired(NOW + 100 + GRACE, GRACE) == 0  # not past the grace
    assert trust.forget_expired(NOW + 101 + GRACE, GRACE) == 2 + 2 + 1
    assert len(trust.vouched) == len(trust.verified) == len(trust.decoded) == 0
    assert len(trust._proven) == 0
    with pytest.raises(Expired):  # validated in full again, and refused
        trust.authorize(order(proofs, exp=NOW + 200), proofs, now=NOW + 101 + GRACE)


def test_forgetting_expired_delegations_keeps_a_revocation_of_a_live_one() -> None:
    trust = TrustContext(OWNER.did)
    live, old = chain(NOW + 3600), chain(NOW, middle=SigningKey.generate())
    trust.authorize(order(live), live, now=NOW)
    trust.authorize(order(old), old, now=NOW)
    trust.revocations.add(revoke(MIDDLE, live[1]))
    trust.forget_expired(NOW + GRACE + 1, GRACE)
    assert trust.vouched.revocable_by(live[1].cid, MIDDLE.did)
    with pytest.raises(Revoked):
        trust.authorize(order(live, exp=NOW + 200), live, now=NOW + GRACE + 1)
