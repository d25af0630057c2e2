"""Hostile review of today's deployment-service changes: who a deployment belongs to
now that it is the principal's (the grantee its chain starts from), whether plans'
budgets hold against fresh keys, and who may read `/dms/node/info` and `resources`.
Findings are strict xfails naming what broke."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import trio

from dms.actor import RemoteError
from dms.deployment import _service as deployment_service
from dms.node import Node
from dms.node._behaviors import INFO, RESOURCES
from dms.node._revocations import EXPIRED_GRACE
from dms.provider import wire

from .conftest import Market, open_market
from .test_deploy_hostile import ONE, UNPLACEABLE, intruder, provider_actor


async def test_a_user_the_operator_granted_cannot_stop_the_operators_own_deployment(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, "operator", command=None, key=market.org) as operator:
        node, org = market.orchestrator.root.handle, market.org.did
        reply = await operator.root.invoke(node, deployment_service.NEW,
                                           {"ensemble": UNPLACEABLE, "deadline": 20},
                                           subject=org)
        theirs = str(reply["id"])
        try:
            with pytest.raises(RemoteError) as refused:
                await market.user.root.invoke(node, deployment_service.SHUTDOWN,
                                              {"id": theirs})
            assert refused.value.name == "UnknownDeployment"
            listed = await market.user.root.invoke(node, deployment_service.LIST)
            assert theirs not in [d["id"] for d in listed["deployments"]]
        finally:
            await operator.root.invoke(node, deployment_service.SHUTDOWN, {"id": theirs},
                                       subject=org)


async def test_a_users_delegate_acts_for_the_user_and_its_owner_is_the_user(
        tmp_path: Path) -> None:
    """Under UCAN a delegate of /dms/node/deployment holds the user's authority over
    it: it sees the user's deployments, and what it creates is the user's."""
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command="/dms/node/deployment") as stranger:
        node, org = market.orchestrator.root.handle, market.org.did
        delegate = await market.user.root.spawn(commands=["/dms/node/deployment"])
        mine = await market.deploy(UNPLACEABLE, deadline=20)
        made = str((await delegate.invoke(node, deployment_service.NEW,
                                          {"ensemble": UNPLACEABLE, "deadline": 20},
                                          subject=org))["id"])
        status = await market.status(made)
        assert status["owner"] == market.user.did
        seen = await delegate.invoke(node, deployment_service.LIST, None, subject=org)
        assert {mine, made} <= {d["id"] for d in seen["deployments"]}
        stranger_sees = await stranger.root.invoke(node, deployment_service.LIST)
        assert stranger_sees["deployments"] == []
        for deployment in (mine, made):
            with pytest.raises(RemoteError) as refused:
                await stranger.root.invoke(node, deployment_service.SHUTDOWN,
                                           {"id": deployment})
            assert refused.value.name == "UnknownDeployment"
        await delegate.invoke(node, deployment_service.SHUTDOWN, {"id": mine}, subject=org)
        await market.shutdown(made)


async def test_fresh_keys_buy_a_user_no_more_plans_a_minute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment_service, "PLANS_PER_MINUTE", 2)
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command="/dms/node/deployment") as other:
        node, org = market.orchestrator.root.handle, market.org.did
        keys = [await market.user.root.spawn(commands=["/dms/node/deployment"])
                for _ in range(3)]
        for key in keys[:2]:
            await key.invoke(node, deployment_service.PLAN,
                             {"ensemble": UNPLACEABLE, "timeout": 0.3}, subject=org, timeout=20)
        with pytest.raises(RemoteError) as refused:
            await keys[2].invoke(node, deployment_service.PLAN,
                                 {"ensemble": UNPLACEABLE, "timeout": 0.3}, subject=org,
                                 timeout=20)
        assert refused.value.name == "TooManyPlans"
        # another user's budget is its own
        await other.root.invoke(node, deployment_service.PLAN,
                                {"ensemble": UNPLACEABLE, "timeout": 0.3}, timeout=20)
        assert market.providers[0].provider is not None
        assert not market.providers[0].provider.book.reservations()


@pytest.mark.parametrize("held", ["/dms/node/deployment", "/dms/deployment"])
async def test_node_info_and_resources_are_refused_to_other_grants_holders(
        tmp_path: Path, held: str) -> None:
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market, command=held) as peer:
        for target in (market.orchestrator.root.handle, market.providers[0].root.handle):
            for command in (INFO, RESOURCES):
                with pytest.raises(RemoteError) as refused:
                    await peer.root.invoke(target, command, None)
                assert refused.value.name in ("InvalidClaim", "UnavailableProof",
                                              "Unauthorized"), refused.value


async def _bid_to(evil: Node, market: Market, providers: list[Node]) -> str:
    """A bid request for a fresh deployment id from `evil`, answered by `providers`."""
    deployment = str(uuid.uuid4())
    for node in providers:
        await evil.root.invoke(provider_actor(node), wire.REQUEST,
                               wire.BidRequest(deployment, ONE, evil.root.handle),
                               subject=market.org.did)
    return deployment


@pytest.mark.parametrize("measurer_bid", [False, True])
async def test_one_bid_lets_each_measurer_probe_a_provider_once(
        tmp_path: Path, measurer_bid: bool) -> None:
    # Measure orders not tied to a bid of the measurer, repeated, each had it send the
    # target a loaded probe (up to 16 targets, 32 times per bid).
    async with open_market(tmp_path, providers=2) as market, intruder(market) as evil:
        measurer, target = market.providers
        deployment = await _bid_to(evil, market, [measurer, target] if measurer_bid
                                   else [target])
        loaded, refused = 0, []
        for _ in range(3):
            try:
                answer = await evil.root.invoke(
                    provider_actor(measurer), wire.MEASURE,
                    wire.MeasureOrder(deployment, (provider_actor(target),)),
                    subject=market.org.did, timeout=20)
            except RemoteError as error:
                refused.append(error.name)
                continue
            loaded += len(answer["bits_per_second"])
        assert loaded == (1 if measurer_bid else 0)
        assert refused == ["NotExpected"] * (2 if measurer_bid else 3)


async def test_a_grant_holders_fresh_keys_share_one_reservation_share(tmp_path: Path) -> None:
    """Commits from keys a holder delegates to count as the holder (HOLDER_SHARE of the
    slots), while another holder can still reserve."""
    async with open_market(tmp_path, providers=1) as market, \
            intruder(market) as evil, intruder(market, "honest") as honest:
        provider = market.providers[0]
        assert provider.provider is not None
        provider.provider.book._max_reservations = 8  # a share of 2
        target, org = provider_actor(provider), market.org.did
        keys = [await evil.root.spawn(commands=["/dms/deployment"]) for _ in range(3)]
        for key in keys[:2]:
            await key.invoke(target, wire.COMMIT,
                             wire.CommitOrder(str(uuid.uuid4()), ONE, ("n",)), subject=org)
        with pytest.raises(RemoteError) as refused:
            await keys[2].invoke(target, wire.COMMIT,
                                 wire.CommitOrder(str(uuid.uuid4()), ONE, ("n",)), subject=org)
        assert refused.value.name == "TooManyReservations"
        await honest.root.invoke(target, wire.COMMIT,
                                 wire.CommitOrder(str(uuid.uuid4()), ONE, ("n",)), subject=org)
        assert len(provider.provider.book.reservations()) == 3


async def test_plans_leave_no_lasting_state_on_providers(tmp_path: Path) -> None:
    # Each plan's actor is revoked when it stops, and every provider that took its bid
    # request kept that revocation for good: ~28,800 a day from one user's 20 plans a
    # minute. Now they are kept until the actor's delegation has expired, then forgotten.
    async with open_market(tmp_path, providers=1) as market:
        provider, node = market.providers[0], market.orchestrator.root.handle

        def kept() -> int:  # for good, unlike the bounded part's
            return len(provider.trust.revocations.kept_revocations())

        before = kept()
        for _ in range(3):
            await market.user.root.invoke(node, deployment_service.PLAN,
                                          {"ensemble": UNPLACEABLE, "timeout": 0.3},
                                          timeout=20)
        with trio.move_on_after(5):  # the floods arrive
            while kept() < before + 3:
                await trio.sleep(0.05)
        assert kept() == before + 3  # while the actors' delegations could still be used
        assert provider.revocations.forget_expired() == 0
        later = provider.clock() + 60 + EXPIRED_GRACE + 1  # past each plan actor's lifetime
        provider.revocations.clock = lambda: later
        assert provider.revocations.forget_expired() == 3
        assert kept() == before
