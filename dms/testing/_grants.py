"""Grant, attenuate and revoke between nodes (or actors) in a test, in one call each.

The runtime's own API does the same in several steps (sign a delegation, hand it to the
audience, publish a revocation and wait for it to spread); tests about authorization
want those steps to be one line and to mean exactly one thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import trio

from dms.actor import Actor
from dms.node import Node
from dms.node import node_of as node_of_actor
from dms.testing._testbed import settle
from ucan import Delegation, Invocation, delegate
from ucan import revoke as revocation_of

Principal = Node | Actor
"""Who can sign: a node (its persistent key) or one of its actors (its own key)."""

POLL = 0.01  # seconds between checks while a revocation spreads over a latent network


class NotTheAudience(ValueError):
    """Only a delegation's audience can delegate it further."""


def did_of(principal: Principal) -> str:
    return principal.did if isinstance(principal, Node) else principal.id


def node_of(principal: Principal) -> Node:
    return principal if isinstance(principal, Node) else node_of_actor(principal)


def _at(now: float, seconds: float | None) -> int | None:
    return None if seconds is None else math.floor(now + seconds)


def grant(
    issuer: Principal,
    audience: Principal,
    command: str,
    *,
    policy: Sequence[Any] = (),
    lifetime: float | None = 3600.0,
    delay: float | None = None,
) -> Delegation:
    """Delegate `command` over the issuer's own resources (subject = issuer) to
    `audience`, and give it to the audience's node as a proof.

    `delay` seconds before it becomes valid (its `nbf`), None for at once; then
    `lifetime` seconds of validity (None: never expires).
    """
    now = node_of(issuer).clock()
    delegation = delegate(issuer.key, did_of(audience), command, policy=list(policy),
                          expiration=_at(now, _span(delay, lifetime)),
                          not_before=_at(now, delay))
    node_of(audience).add_proofs(delegation)
    return delegation


def _span(delay: float | None, lifetime: float | None) -> float | None:
    return None if lifetime is None else (delay or 0.0) + lifetime


def attenuate(
    issuer: Principal,
    parent: Delegation,
    audience: Principal,
    command: str | None = None,
    *,
    policy: Sequence[Any] = (),
    lifetime: float | None = None,
    delay: float | None = None,
) -> Delegation:
    """Delegate `parent` further, from its audience `issuer` to `audience`.

    `command` (default: the parent's) should be the parent's or below it; `policy`
    adds statements (the parent's still apply, since every link is checked);
    `delay` and `lifetime` as for `grant`; without `lifetime` it expires with the parent
    (a `delay` past the parent's expiry makes `ucan.delegate` refuse it: MalformedToken).
    The audience's node receives the new
    delegation and the issuer's proofs for the same subject, so it can build the chain.
    Raises NotTheAudience when `issuer` is not `parent`'s audience.
    """
    if did_of(issuer) != parent.aud:
        raise NotTheAudience(
            f"{did_of(issuer)} cannot delegate {parent.cid} further: its audience is {parent.aud}"
        )
    issuer_node = node_of(issuer)
    now = issuer_node.clock()
    expiration = parent.exp if lifetime is None else _at(now, _span(delay, lifetime))
    delegation = delegate(issuer.key, did_of(audience), command or parent.cmd,
                          subject=parent.sub, policy=list(policy), expiration=expiration,
                          not_before=_at(now, delay))
    chain_material = [d for d in issuer_node.trust.provided.values()
                      if d.sub == parent.sub or d.sub is None]
    node_of(audience).add_proofs(parent, *chain_material, delegation)
    return delegation


async def revoke_everywhere(
    revoker: Principal,
    delegation: Delegation,
    *,
    reach: Iterable[Node] = (),
) -> Invocation:
    """Revoke `delegation` as `revoker`: apply it on the revoker's node, flood it on the
    revocation topic, and return once every node in `reach` has applied it.

    A revocation counts only in chains where the revoker issued the delegation or one
    above it (the UCAN rule); anyone's revocation is still spread and recorded.
    """
    revocation = revocation_of(revoker.key, delegation)
    await node_of(revoker).publish_revocation(revocation)
    waiting = list(reach)
    await settle()
    while not all(revocation.iss in node.trust.revocations.revokers(delegation.cid)
                  for node in waiting):
        await trio.sleep(POLL)
    return revocation
