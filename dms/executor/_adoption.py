"""What an executor offers for its executions to outlive a provider process.

A provider that restarts must find the workloads it left running, take over the ones
it still wants and remove the rest. Executors that can do that (process: identity
files and named pipes; docker: labels) satisfy `Adoptable`; the provider asks
`isinstance(executor, Adoptable)` and treats the others as losing their executions
with the provider.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dms.executor._protocol import Execution
from dms.executor._spec import ExecutionSpec
from dms.store import ExecutionIdentity


@runtime_checkable
class Adoptable(Protocol):
    def identity_of(self, execution: Execution) -> ExecutionIdentity | None:
        """What identifies `execution` across a restart (None: not one of ours)."""
        ...

    def detach(self) -> None:
        """Leave every running execution running when the executor closes."""
        ...

    async def adopt(self, identity: ExecutionIdentity, spec: ExecutionSpec) -> Execution:
        """Take over an execution an earlier executor left running; NotAdoptable if it
        is not the recorded one any more (ended, pid reused, rebooted, ...)."""
        ...

    async def leftovers(self) -> tuple[ExecutionIdentity, ...]:
        """What earlier executors left (running or not) that this one does not run."""
        ...

    async def discard(self, identity: ExecutionIdentity) -> None:
        """Stop and remove a leftover; what is not the recorded process is not touched."""
        ...
