"""Trust contexts: authorization, chain finding, revocation semantics, caches."""

from __future__ import annotations

from typing import Any

import pytest

from ucan import (
    InvalidAudience,
    InvalidSignature,
    InvalidSubject,
    MalformedToken,
    Revoked,
    SigningKey,
    TrustContext,
    delegate,
    encode_container,
    invoke,
    revoke,
)
from ucan.codec import CID
from ucan.revocation import RevocationSet

NOW = 1_750_000_000
ROOT, NODE, ACTOR, STRANGER = (SigningKey.from_seed(bytes([n]) * 32) for n in range(11, 15))


def chain_of(*keys: SigningKey, cmd: str = "/dms", **kwargs: Any) -> list[Any]:
    kwargs.setdefault("expiration", NOW + 3600)
    return [delegate(a, b.did, cmd, subject=keys[0].did, **kwargs)
            for a, b in zip(keys, keys[1:], strict=False)]


def test_authorize_accepts_chains_about_itself_or_an_anchor_only() -> None:
    proofs = chain_of(ROOT, NODE, ACTOR)
    inv = invoke(ACTOR, ROOT.did, "/dms/x", {}, [p.cid for p in proofs], audience=NODE.did,
                 expiration=None)
    assert TrustContext(NODE.did, anchors=[ROOT.did]).authorize(inv, proofs, now=NOW)
    with pytest.raises(InvalidSubject, match="anchors"):
        TrustContext(NODE.did).authorize(inv, proofs, now=NOW)
    with pytest.raises(InvalidAudience, match="not here"):
        TrustContext(STRANGER.did, anchors=[ROOT.did]).authorize(inv, proofs, now=NOW)


def test_a_strangers_revocation_changes_nothing() -> None:
    proofs = chain_of(ROOT, NODE, ACTOR)
    trust = TrustContext(ROOT.did)
    trust.revocations.add(revoke(STRANGER, proofs[1]))
    assert trust.revocations.revokers(proofs[1].cid) == {STRANGER.did}
    inv = invoke(ACTOR, ROOT.did, "/dms", {}, [p.cid for p in proofs], expiration=None)
    trust.authorize(inv, proofs, now=NOW)
    trust.revocations.add(revoke(ACTOR, proofs[1]))  # below it in the chain: still a stranger
    trust.authorize(inv, proofs, now=NOW)


@pytest.mark.parametrize("revoker", [ROOT, NODE], ids=["upstream issuer", "its issuer"])
def test_an_issuer_at_or_above_a_delegation_revokes_it(revoker: SigningKey) -> None:
    proofs = chain_of(ROOT, NODE, ACTOR)
    trust = TrustContext(ROOT.did)
    trust.revocations.add(revoke(revoker, proofs[1]))
    inv = invoke(ACTOR, ROOT.did, "/dms", {}, [p.cid for p in proofs], expiration=None)
    with pytest.raises(Revoked, match="proof 2 of 2"):
        trust.authorize(inv, proofs, now=NOW)


def test_a_forged_revocation_is_refused_when_added() -> None:
    proofs = chain_of(ROOT, NODE)
    genuine = revoke(NODE, proofs[0])
    from ucan.envelope import INVOCATION_TAG, seal
    from ucan.invocation import Invocation

    class Impostor:
        did = ROOT.did

        def sign(self, message: bytes) -> bytes:
            return STRANGER.sign(message)

    forged = Invocation.decode(seal(genuine.payload() | {"iss": ROOT.did, "sub": ROOT.did},
                                    INVOCATION_TAG, Impostor()).envelope)
    with pytest.raises(InvalidSignature):
        RevocationSet().add(forged)
    with pytest.raises(MalformedToken):
        RevocationSet().add(invoke(ROOT, ROOT.did, "/ucan/revoke", {"revoke": "x"},
                                   expiration=None))


def test_find_chain_builds_the_shortest_usable_chain_root_first() -> None:
    long_way = chain_of(ROOT, STRANGER, NODE, ACTOR)
    short_way = chain_of(ROOT, NODE, ACTOR)
    trust = TrustContext(ACTOR.did)
    trust.provide(*long_way, *short_way)
    found = trust.find_chain(ACTOR.did, "/dms/deployment", ROOT.did, now=NOW)
    assert found is not None and len(found) == 2
    assert found[0] == short_way[0] and found[-1].aud == ACTOR.did
    inv = invoke(ACTOR, ROOT.did, "/dms/deployment", {}, [d.cid for d in found], expiration=None)
    TrustContext(ROOT.did).authorize(inv, found, now=NOW)


def test_find_chain_skips_expired_revoked_and_narrower_links() -> None:
    expired = chain_of(ROOT, ACTOR, expiration=NOW - 1)
    narrow = chain_of(ROOT, ACTOR, cmd="/dms/other")
    revoked = chain_of(ROOT, ACTOR)
    trust = TrustContext(ACTOR.did)
    trust.provide(*expired, *narrow, *revoked)
    trust.revocations.add(revoke(ROOT, revoked[0]))
    assert trust.find_chain(ACTOR.did, "/dms/deployment", ROOT.did, now=NOW) is None
    good = chain_of(ROOT, ACTOR)
    assert trust.find_chain(ACTOR.did, "/dms/deployment", ROOT.did, now=NOW,
                            extra=good) == good


def test_find_chain_follows_powerlines_and_survives_cycles() -> None:
    root_grant = delegate(ROOT, NODE.did, "/dms", expiration=None)
    power = delegate(NODE, ACTOR.did, "/dms", subject=None, expiration=None)
    back = delegate(ACTOR, NODE.did, "/dms", subject=None, expiration=None)
    trust = TrustContext(ACTOR.did)
    trust.provide(root_grant, power, back)
    assert trust.find_chain(ACTOR.did, "/dms/x", ROOT.did, now=NOW) == [root_grant, power]
    assert trust.find_chain(ACTOR.did, "/dms/x", STRANGER.did, now=NOW) is None


def test_a_warm_context_verifies_each_delegation_once_and_decodes_it_once() -> None:
    proofs = chain_of(ROOT, NODE, ACTOR)
    trust = TrustContext(ROOT.did)
    for n in range(3):
        inv = invoke(ACTOR, ROOT.did, "/dms", {"n": n}, [p.cid for p in proofs],
                     expiration=None)
        container = encode_container([inv.envelope, *(p.envelope for p in proofs)])
        opened, delegations = trust.open_container(container)
        assert opened == inv
        trust.authorize(opened, delegations, now=NOW)
    assert set(trust.verified) == {p.cid for p in proofs}
    assert len(trust.decoded) == 2
    assert trust.decode_delegation(proofs[0].envelope) is delegations[proofs[0].cid]


def test_a_container_without_exactly_one_invocation_is_malformed() -> None:
    proofs = chain_of(ROOT, NODE)
    trust = TrustContext(ROOT.did)
    with pytest.raises(MalformedToken, match="exactly one invocation"):
        trust.open_container(encode_container([p.envelope for p in proofs]))


def test_cache_keys_are_content_addresses() -> None:
    proof = chain_of(ROOT, NODE)[0]
    assert CID.for_bytes(proof.envelope) == proof.cid


def test_the_revocation_set_is_bounded_and_forgets_oldest_first() -> None:
    from ucan import RevocationSet, SigningKey, delegate, revoke

    issuer = SigningKey.generate()
    grants = [delegate(issuer, issuer.did, "/x", expiration=None) for _ in range(4)]
    revocations = RevocationSet(capacity=3)
    for grant in grants:
        revocations.add(revoke(issuer, grant))
    assert len(revocations) == 3 and revocations.version == 4
    assert revocations.revokers(grants[0].cid) == frozenset()  # forgotten
    assert all(revocations.revokes(g.cid, [issuer.did]) for g in grants[1:])


def test_only_delegations_of_an_authorized_chain_are_kept_decoded() -> None:
    """Decoded delegations used to be cached before any check: a stream of refused,
    self-made delegations grew the node by gigabytes. Now only proofs of an authorized
    invocation stay, and the cache is bounded in bytes too."""
    trust = TrustContext(NODE.did, anchors=[ROOT.did])
    junk = [delegate(STRANGER, ACTOR.did, f"/junk/n{n}", expiration=None,
                     meta={"pad": "x" * 1000}) for n in range(20)]
    bogus = invoke(ACTOR, STRANGER.did, "/junk/n1", {}, [junk[1].cid], audience=NODE.did,
                   expiration=None)
    opened, proofs = trust.open_container(encode_container(
        [bogus.envelope, *(d.envelope for d in junk)]))
    with pytest.raises(InvalidSubject):
        trust.authorize(opened, proofs, now=NOW)
    assert len(trust.decoded) == 0
    good = chain_of(ROOT, NODE, ACTOR)
    inv = invoke(ACTOR, ROOT.did, "/dms/x", {}, [p.cid for p in good], audience=NODE.did,
                 expiration=None)
    opened, proofs = trust.open_container(encode_container(
        [inv.envelope, *(d.envelope for d in good)]))
    trust.authorize(opened, proofs, now=NOW)
    assert len(trust.decoded) == len(good)
    assert all(trust.decoded.get(d.envelope) is not None for d in good)


def test_the_decoded_cache_is_bounded_in_bytes() -> None:
    from ucan.trust import DecodedCache

    cache = DecodedCache(capacity=1000, max_bytes=10_000)
    for n in range(50):
        cache.add(delegate(STRANGER, ACTOR.did, f"/pad/n{n}", expiration=None,
                           meta={"pad": "x" * 1000}))
    assert cache.bytes <= 10_000 and 0 < len(cache) < 50


def test_one_issuers_flood_of_revocations_pushes_out_only_its_own() -> None:
    revocations = RevocationSet(capacity=10_000, per_issuer=50)
    proofs = chain_of(ROOT, NODE, ACTOR)
    revocations.add(revoke(NODE, proofs[1]))  # a revocation that matters, by someone else
    flooder = SigningKey.generate()
    for n in range(200):
        revocations.add(revoke(flooder, delegate(flooder, flooder.did, f"/j/n{n}",
                                                 expiration=None)))
    assert revocations.revokers(proofs[1].cid) == {NODE.did}
    assert len(revocations) == 1 + 50


def test_revocations_are_bounded_in_bytes_and_each_in_size() -> None:
    from ucan.revocation import MAX_REVOCATION_BYTES

    revocations = RevocationSet(capacity=10_000, max_bytes=20_000, per_issuer=10_000)
    for n in range(200):
        key = SigningKey.generate()
        revocations.add(revoke(key, delegate(key, key.did, f"/j/n{n}", expiration=None)))
    assert revocations.bytes <= 20_000 and 0 < len(revocations) < 200
    padded = invoke(STRANGER, STRANGER.did, "/ucan/revoke",
                    {"revoke": chain_of(ROOT, NODE)[0].cid}, [], expiration=None,
                    meta={"pad": "x" * MAX_REVOCATION_BYTES})
    with pytest.raises(MalformedToken, match="bytes"):
        RevocationSet().add(padded)


def test_the_decoded_cache_holds_its_bound_in_entries_and_heap_bytes() -> None:
    import tracemalloc

    from ucan import Delegation
    from ucan.trust import DecodedCache

    cache = DecodedCache(capacity=100, max_bytes=10**9)
    delegations = [delegate(STRANGER, ACTOR.did, f"/dms/n{n}", expiration=None)
                   for n in range(300)]
    envelopes = [d.envelope for d in delegations]
    del delegations
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for envelope in envelopes:  # decoded here: the cache is all that keeps them
            cache.add(Delegation.decode(envelope))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 100 and cache.get(envelopes[0]) is None
    assert cache.get(envelopes[-1]) is not None
    assert held <= cache.bytes  # what it charges covers what the entries cost
    small = DecodedCache(capacity=10**6, max_bytes=20 * 1024)
    for envelope in envelopes:
        small.add(Delegation.decode(envelope))
    assert small.bytes <= 20 * 1024 and 0 < len(small) < 20
