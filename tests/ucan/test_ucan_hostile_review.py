"""Hostile review of today's codec and sender-side chain memory: what a remote peer's
bytes can make `ucan.codec` (cbrrr) and the wire decoder do, and whether a remembered
outgoing chain outlives what it was chosen from. Findings are strict xfails."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from dms.actor import decode_message
from dms.actor._chain_choice import ChainChoices
from ucan import (
    MalformedToken,
    SigningKey,
    TrustContext,
    UcanError,
    codec,
    delegate,
    invoke,
    revoke,
)
from ucan.container import BASE64_GZIP, RAW_GZIP, encode_container

needs_native = pytest.mark.skipif(not codec.NATIVE, reason="cbrrr (native codec) not installed")

CTN = b"\xa1\x66ctn-v1"  # {"ctn-v1": ...}


@needs_native
@pytest.mark.parametrize("head", [
    b"\x9b" + (2**63).to_bytes(8, "big"),  # list of 2^63 items
    b"\xbb" + (2**62).to_bytes(8, "big"),  # map of 2^62 pairs
    b"\x5b" + (2**62).to_bytes(8, "big"),  # byte string of 2^62 bytes
    b"\x7b" + (2**62).to_bytes(8, "big"),  # text string of 2^62 bytes
])
def test_a_length_head_past_the_input_is_refused_without_allocating_it(head: bytes) -> None:
    for decoder in (codec.decode, codec.decode_unhashed):
        tracemalloc.start()
        try:
            with pytest.raises(MalformedToken):
                decoder(head)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1024 * 1024


@needs_native
@pytest.mark.parametrize("data", [
    b"\x18\x01",  # 1 in two bytes
    b"\xf9\x00\x00",  # half float
    b"\xfa\x00\x00\x00\x00",  # single float
    b"\xa2\x61b\x01\x61a\x02",  # keys out of order
    b"\xa2\x61a\x01\x61a\x02",  # duplicate key
    b"\x9f\x01\xff",  # indefinite list
    b"\xc2\x41\x01",  # tag 2 (bignum)
    b"\xd8\x2a\x45\x01\x71\x12\x20\x00",  # CID without its 0x00 prefix
    b"\xf7",  # undefined
    b"\x00\x00",  # trailing byte
])
def test_the_native_decoder_refuses_every_non_canonical_form(data: bytes) -> None:
    with pytest.raises(MalformedToken):
        codec.decode(data)


@needs_native
def test_a_cid_with_a_truncated_digest_is_refused() -> None:
    with pytest.raises(MalformedToken):
        codec.decode(b"\xd8\x2a\x46\x00\x01\x71\x12\x20\x00")


@pytest.mark.parametrize("header", [RAW_GZIP, BASE64_GZIP])
def test_a_message_in_a_gzip_container_is_refused_before_inflating(header: int) -> None:
    trust = TrustContext(SigningKey.generate().did)
    with pytest.raises(MalformedToken, match="raw-bytes container"):
        decode_message(encode_container([b"\x00" * 64], header), trust)


SIZE = 256 * 1024


@needs_native
@pytest.mark.parametrize("body", [
    b"\x81" * SIZE + b"\x00",  # nested one-item lists
    b"\x9a" + SIZE.to_bytes(4, "big") + b"\x80" * SIZE,  # a list of empty lists
], ids=["deep", "wide"])
def test_a_hostile_container_costs_little_memory_before_it_is_refused(body: bytes) -> None:
    trust = TrustContext(SigningKey.generate().did)
    frame = b"\x40" + CTN + body
    tracemalloc.start()
    try:
        with pytest.raises(MalformedToken):
            decode_message(frame, trust)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(frame)


def _chain() -> tuple[TrustContext, SigningKey, list]:  # type: ignore[type-arg]
    org, me = SigningKey.generate(), SigningKey.generate()
    trust = TrustContext(me.did, anchors=[org.did])
    grant = delegate(org, me.did, "/dms/node/deployment", expiration=int(time.time()) + 100)
    trust.provide(grant)
    return trust, org, [grant]


def test_a_remembered_chain_is_not_reused_after_a_revocation_of_it() -> None:
    trust, org, chain = _chain()
    choices = ChainChoices(trust)
    choices.remember("k", org.did, chain)
    now = int(time.time())
    assert choices.get("k", now=now, skew=0, args={}) is not None
    trust.revocations.add(revoke(org, chain[0]))
    assert choices.get("k", now=now, skew=0, args={}) is None


def test_a_remembered_chain_is_not_reused_once_it_expired_or_its_grant_is_dropped() -> None:
    trust, org, chain = _chain()
    choices = ChainChoices(trust)
    choices.remember("k", org.did, chain)
    assert choices.get("k", now=int(time.time()) + 200, skew=60, args={}) is None
    choices.remember("k", org.did, chain)
    trust.provided.clear()
    assert choices.get("k", now=int(time.time()), skew=0, args={}) is None


def test_a_chain_proven_before_its_anchor_was_removed_is_refused_after() -> None:
    """The state watch discards an anchor from `trust.anchors`; the receiver's memory
    of proven chains must not outlive it."""
    org, user, node = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    trust = TrustContext(node.did, anchors=[org.did])
    grant = delegate(org, user.did, "/dms/node/deployment", expiration=None)
    now = int(time.time())

    def call() -> None:
        invocation = invoke(user, org.did, "/dms/node/deployment/list", {}, [grant.cid],
                            audience=node.did, expiration=now + 60)
        trust.authorize(invocation, [grant], now=now)

    call()
    call()  # now answered from the proven-chain memory
    trust.anchors.discard(org.did)
    with pytest.raises(UcanError):
        call()


def test_a_big_value_of_few_items_decodes_and_one_of_too_many_items_is_refused() -> None:
    from ucan._ipld_limits import MAX_ITEMS

    text = "x" * (1 << 20)  # an ensemble's text inside an invocation: one item
    assert codec.decode(codec.encode({"ensemble": text}))["ensemble"] == text
    with pytest.raises(MalformedToken, match=f"more than {MAX_ITEMS} CBOR items"):
        codec.decode(codec.encode([0] * (MAX_ITEMS + 1)))
