"""What a restarted orchestrator node does with a deployment its restart cut off before
it ran (committing or allocating): nothing drives it any more, so whatever its providers
hold for it is only cost. Its orchestrator actor (a lasting key: the same id, which the
providers know as the deployment's owner) sends the revert a running orchestrator would
to every provider the record says was asked to commit, under the same capability chain
(the node's grant of `/dms/deployment`), then records the deployment failed.

Each provider is asked until it answers (a node that has just started is still
connecting), each request shielded and bounded (`request_timeout`), all of it for no
longer than the commit's lease: past that the provider has released it anyway. One that
never answers, refuses, or restarted since (its provider actor is another one now) is
logged and left to its lease. A provider that never got the commit, or released it already, answers
that it released nothing. Until the failure is recorded the deployment stays in its
phase on disk, so a node stopped again mid-revert reverts again when it comes back.
"""

from __future__ import annotations

import logging

import trio

from dms.actor import Actor, ActorError, Handle, RemoteError
from dms.cleanup import shielded_cleanup
from dms.provider import wire
from dms.store import DeploymentPhase

from ._journal import DeploymentJournal
from ._orchestrator import DeploymentSettings

log = logging.getLogger("dms.deployment")
FIRST_PAUSE = 0.25
LAST_PAUSE = 2.0
"""Seconds between tries to reach a provider (doubling from the first): a node that
has just started is connecting to its peers, and an unreachable one becomes reachable."""


async def revert_cut_off(actor: Actor, journal: DeploymentJournal, market: str,
                         settings: DeploymentSettings) -> None:
    """Revert the deployment on every provider in `journal.record.commits`, asking under
    `market` (the subject a commit was asked under), then fail it saying what was
    reverted and what is left to the leases."""
    record = journal.record
    answered: dict[str, str] = {}  # provider -> what it answered, or why not
    released: set[str] = set()

    async def revert(peer: str, provider_actor: str) -> None:
        provider = Handle(provider_actor, peer, peer, "provider")
        pause = FIRST_PAUSE
        while True:
            try:
                with shielded_cleanup(settings.request_timeout + 1):
                    reply = await actor.invoke(provider, wire.REVERT,
                                               wire.DeploymentRef(record.id), subject=market,
                                               timeout=settings.request_timeout)
                break
            except RemoteError as refused:  # it answered: asking again changes nothing
                answered[peer] = f"refused: {refused.name}: {refused.message}"[:1000]
                return
            except ActorError as error:  # not reachable yet, most likely: a node that has
                answered[peer] = str(error)[:1000] or type(error).__name__  # just started
            await trio.sleep(pause)
            pause = min(pause * 2, LAST_PAUSE)
        released.add(peer)
        count = reply.get("released") if isinstance(reply, dict) else None
        answered[peer] = f"released {count!r}"

    await journal.event("reverting", providers=sorted(record.commits))
    # Past the lease there is nothing left to revert: every provider released it then.
    with trio.move_on_after(settings.lease):
        async with trio.open_nursery() as nursery:
            for peer, provider_actor in sorted(record.commits.items()):
                nursery.start_soon(revert, peer, provider_actor)
    with shielded_cleanup(settings.undo_timeout):
        for peer in sorted(record.commits):
            if peer in released:
                await journal.event("reverted", provider=peer, detail=answered[peer])
                continue
            why = answered.get(peer, "no answer")
            log.warning("deployment %s: revert on %s unconfirmed (%s); its lease releases "
                        "it", record.id, peer, why)
            await journal.event("take_down_unconfirmed", provider=peer, reason=why)
        reason = _reason(record.phase, sorted(record.commits), released)
        await journal.update(phase=DeploymentPhase.FAILED, failure=reason)
        await journal.event("phase", phase=DeploymentPhase.FAILED.value, detail=reason)


def _reason(phase: DeploymentPhase, asked: list[str], released: set[str]) -> str:
    was = f"its orchestrator's node restarted while it was {phase.value}"
    left = [peer for peer in asked if peer not in released]
    if not left:
        return f"{was}; it reverted the deployment on every provider asked to commit"
    return (f"{was}; it reverted the deployment on {len(released)} of {len(asked)} "
            f"providers asked to commit; the others ({', '.join(left)}) release what "
            f"they hold when their leases run out")
