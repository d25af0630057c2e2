"""A publication delivered to a subscriber is decoded and its invocation signature
checked once: the mesh's screen does both, admission takes the result for exactly the
same bytes and still makes every other check."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import dms.actor._admission
import dms.actor._system
import ucan.validate
from dms.actor._admission import Accept, Admission, Refuse
from dms.actor._screened import ENTRY_OVERHEAD, ScreenedPublications
from dms.actor._wire import decode_message, encode_message
from dms.node import DEPLOYMENT_TOPIC, Node
from dms.testing import open_testbed, settle
from ucan import Expired, SigningKey, TrustContext, delegate, invoke, verify_signature

ORG = SigningKey.from_seed(b"\x0f" * 32)
REQUEST = "/dms/deployment/request"
NODE = SigningKey.from_seed(b"\x01" * 32)  # the node a bare admission runs on


def count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:
    """Count signature checks by the screen, admission and ucan's chain validation, per
    signature."""
    checks: Counter[bytes] = Counter()

    def counted(did: str, message: bytes, signature: bytes) -> bool:
        checks[signature] += 1
        return verify_signature(did, message, signature)

    monkeypatch.setattr(dms.actor._system, "verify_signature", counted)
    monkeypatch.setattr(dms.actor._admission, "verify_signature", counted)
    monkeypatch.setattr(ucan.validate, "verify_signature", counted)
    return checks


def listen(node: Node) -> list[Any]:
    heard: list[Any] = []

    async def on_request(message: Any) -> None:
        assert message.chain.subject == ORG.did  # admission validated the chain
        heard.append(message.invocation.args["job"])

    node.root.behavior(REQUEST)(on_request)
    node.root.subscribe(DEPLOYMENT_TOPIC)
    return heard


def org_publication(node: Node, job: int, *, lifetime: int = 600) -> bytes:
    """A broadcast the org itself signs (its own subject: no proofs needed)."""
    return encode_message(invoke(ORG, ORG.did, REQUEST, {"topic": DEPLOYMENT_TOPIC, "job": job},
                                 expiration=int(node.clock()) + lifetime))


def with_bad_signature(payload: bytes, trust: TrustContext) -> bytes:
    signature = decode_message(payload, trust).invocation.signature
    at = payload.index(signature)
    return payload[:at] + bytes([payload[at] ^ 1]) + payload[at + 1:]


async def test_each_subscriber_checks_a_relayed_publication_signature_once(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = count_signature_checks(monkeypatch)
    async with open_testbed(4, anchors=[[ORG.did]] * 4) as net:
        publisher, subscribers = net[0], list(net)[1:]
        heard = [listen(node) for node in subscribers]
        grant = delegate(ORG, publisher.did, REQUEST, expiration=int(publisher.clock()) + 3600)
        publisher.add_proofs(grant)
        for job in range(3):
            await publisher.root.broadcast(DEPLOYMENT_TOPIC, REQUEST, {"job": job},
                                           subject=ORG.did)
        await settle()
        assert heard == [[0, 1, 2]] * 3
        # The grant's signature: once per subscriber for all three publications (ucan's
        # cache of verified delegation CIDs).
        assert checks.pop(grant.signature) == 3
        # One check per publication per subscriber: the screen's, shared with admission.
        assert sorted(checks.values()) == [3, 3, 3]
        for node in subscribers:
            assert node.metrics()["accepted"] == 3
            assert len(node.system.screened) == 0  # each entry was taken by admission


async def test_tampered_bytes_after_a_good_screen_are_still_refused(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_testbed(1, anchors=[[ORG.did]]) as net:
        node = net[0]
        heard = listen(node)
        good = org_publication(node, 7)
        assert node.system.screen_publication(DEPLOYMENT_TOPIC, good)
        assert len(node.system.screened) == 1
        checks = count_signature_checks(monkeypatch)
        await node.receive(with_bad_signature(good, node.trust), topic=DEPLOYMENT_TOPIC,
                           via="relay")
        assert heard == []
        assert node.metrics()["dropped.forged"] == 1
        assert sum(checks.values()) == 1  # the altered bytes were checked afresh
        await node.receive(good, topic=DEPLOYMENT_TOPIC, via="relay")
        await settle()
        assert heard == [7]
        assert sum(checks.values()) == 1  # the screened bytes were not checked again


async def test_a_relay_without_subscribers_keeps_nothing_for_admission(
        autojump_clock: object) -> None:
    async with open_testbed(1, anchors=[[ORG.did]]) as net:
        node = net[0]
        assert node.system.screen_publication(DEPLOYMENT_TOPIC, org_publication(node, 1))
        assert len(node.system.screened) == 0


async def test_a_screened_publication_is_still_replay_checked(autojump_clock: object) -> None:
    async with open_testbed(1, anchors=[[ORG.did]]) as net:
        node = net[0]
        heard = listen(node)
        good = org_publication(node, 3)
        for _ in range(2):
            assert node.system.screen_publication(DEPLOYMENT_TOPIC, good)
            await node.receive(good, topic=DEPLOYMENT_TOPIC, via="relay")
        await settle()
        assert heard == [3]
        assert node.metrics()["dropped.replayed"] == 1


def test_admission_checks_time_bounds_of_a_screened_envelope_at_admission_time() -> None:
    trust = TrustContext(NODE.did, anchors=[ORG.did])
    admission = Admission(trust, lambda actor: False)
    now = 1_000_000.0
    payload = encode_message(invoke(ORG, ORG.did, REQUEST, {"topic": DEPLOYMENT_TOPIC},
                                    expiration=int(now) + 10))
    screened = decode_message(payload, trust)
    late = admission.admit(payload, now=now + 3600, topic=DEPLOYMENT_TOPIC, screened=screened)
    assert isinstance(late, Refuse) and isinstance(late.error, Expired)
    on_time = admission.admit(payload, now=now, topic=DEPLOYMENT_TOPIC, screened=screened)
    assert isinstance(on_time, Accept)


def test_screened_entries_are_taken_once_and_only_for_the_same_bytes() -> None:
    trust = TrustContext(NODE.did)
    payload = encode_message(invoke(ORG, ORG.did, REQUEST, expiration=2_000_000))
    envelope = decode_message(payload, trust)
    screened = ScreenedPublications()
    screened.put(payload, envelope, now=0.0)
    assert screened.take(payload[:-1] + b"\x00", now=0.0) is None
    assert screened.take(bytes(payload), now=0.0) is envelope  # equal bytes, another object
    assert screened.take(payload, now=0.0) is None
    assert screened.size == 0


def test_screened_entries_are_bounded_in_count_bytes_and_age() -> None:
    trust = TrustContext(NODE.did)
    payloads = [encode_message(invoke(ORG, ORG.did, REQUEST, {"n": n}, expiration=2_000_000))
                for n in range(5)]
    envelope = decode_message(payloads[0], trust)  # the value is not what is bounded
    by_count = ScreenedPublications(max_entries=3)
    for payload in payloads:
        by_count.put(payload, envelope, now=0.0)
    assert len(by_count) == 3
    assert by_count.take(payloads[1], now=0.0) is None  # oldest out first
    assert by_count.take(payloads[4], now=0.0) is envelope

    cost = len(payloads[0]) + ENTRY_OVERHEAD
    by_bytes = ScreenedPublications(max_bytes=2 * cost + 1)
    for payload in payloads:
        by_bytes.put(payload, envelope, now=0.0)
    assert len(by_bytes) == 2 and by_bytes.size <= 2 * cost + 1
    too_small = ScreenedPublications(max_bytes=cost - 1)
    too_small.put(payloads[0], envelope, now=0.0)
    assert len(too_small) == 0

    by_age = ScreenedPublications(max_age=10.0)
    by_age.put(payloads[0], envelope, now=0.0)
    assert by_age.take(payloads[0], now=10.5) is None
    by_age.put(payloads[1], envelope, now=0.0)
    by_age.put(payloads[2], envelope, now=11.0)  # the expired one goes as a new one comes
    assert len(by_age) == 1 and by_age.take(payloads[2], now=11.0) is envelope


def test_screened_publications_refuse_a_bound_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ScreenedPublications(max_entries=0)

