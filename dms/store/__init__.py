"""Node state in SQLite: deployments and their event streams (orchestrator side),
reservations and allocations (provider side), in `<state_dir>/node.sqlite3`.

    async with open_node_store(state_dir) as store:
        await store.call(NodeDatabase.create_deployment, DeploymentRecord(...))
        deployment = await store.call(NodeDatabase.get_deployment, deployment_id)

`NodeDatabase` is the synchronous core (typed calls, each one transaction);
`NodeStore` runs its calls in one worker thread at a time so the trio loop never waits
for the disk. The file's layout and versioning rules are in spec/state.md. Replay ids
and revocations are kept in files of their own (`dms.actor.ReplayLog`,
`ucan.store.TokenStore`), not here.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.store._database import (
        DATABASE_FILE,
        MAX_EVENT_PAYLOAD,
        MAX_PAGE,
        EventRetention,
        NodeDatabase,
    )
    from dms.store._errors import (
        DuplicateRecord,
        EventTooLarge,
        InvalidRecord,
        MalformedRow,
        MigrationFailed,
        RecordNotFound,
        SchemaTooNew,
        StoreClosed,
        StoreError,
    )
    from dms.store._records import (
        AllocationRecord,
        DeploymentAllocation,
        DeploymentRecord,
        EventRecord,
        ExecutionIdentity,
        HeldResources,
        HostedDeployment,
        ReservationRecord,
    )
    from dms.store._schema import MIGRATIONS, SCHEMA_VERSION
    from dms.store._states import AllocationState, DeploymentPhase, ReservationState
    from dms.store._store import NodeStore, open_node_store
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.store._database": (
            "DATABASE_FILE", "MAX_EVENT_PAYLOAD", "MAX_PAGE", "EventRetention", "NodeDatabase",
        ),
        "dms.store._errors": (
            "DuplicateRecord", "EventTooLarge", "InvalidRecord", "MalformedRow",
            "MigrationFailed", "RecordNotFound", "SchemaTooNew", "StoreClosed", "StoreError",
        ),
        "dms.store._records": (
            "AllocationRecord", "DeploymentAllocation", "DeploymentRecord", "EventRecord",
            "ExecutionIdentity", "HeldResources", "HostedDeployment", "ReservationRecord",
        ),
        "dms.store._schema": ("MIGRATIONS", "SCHEMA_VERSION"),
        "dms.store._states": ("AllocationState", "DeploymentPhase", "ReservationState"),
        "dms.store._store": ("NodeStore", "open_node_store"),
    })

__all__ = [
    "DATABASE_FILE",
    "MAX_EVENT_PAYLOAD",
    "MAX_PAGE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AllocationRecord",
    "AllocationState",
    "DeploymentAllocation",
    "DeploymentPhase",
    "DeploymentRecord",
    "DuplicateRecord",
    "EventRecord",
    "EventRetention",
    "EventTooLarge",
    "ExecutionIdentity",
    "HeldResources",
    "HostedDeployment",
    "InvalidRecord",
    "MalformedRow",
    "MigrationFailed",
    "NodeDatabase",
    "NodeStore",
    "RecordNotFound",
    "ReservationRecord",
    "ReservationState",
    "SchemaTooNew",
    "StoreClosed",
    "StoreError",
    "open_node_store",
]
