"""Where an orchestrator finds its allocations again after a provider restart.

The provider actor and the allocation actors have ephemeral keys: a restarted provider
serves from new actors, and the handles and delegations an orchestrator holds name the
old ones. The node's root actor is the one address that outlives the restart (its id
is the node's own DID), so it answers `/dms/deployment/allocations`: to the
orchestrator that owns the deployment, the provider actor's handle now and its
allocation actors with fresh delegations.
"""

from __future__ import annotations

from dms.actor import BehaviorFailed, Message, Role, behavior

from ._service import ProviderService
from ._wire import ALLOCATIONS, DeploymentRef, HostedAllocations


class ProviderLocator(Role):
    """Register on the node's root actor; `service` is the provider serving now (None
    while there is none: before it has restored what it kept, or after it stopped)."""

    def __init__(self) -> None:
        self.service: ProviderService | None = None

    @behavior(ALLOCATIONS, args=DeploymentRef)
    async def allocations(self, message: Message[DeploymentRef]) -> HostedAllocations:
        if self.service is None:
            raise BehaviorFailed("this node is not providing now", name="NotProviding")
        return self.service.hosted_allocations(message.args, message.sender.id)
