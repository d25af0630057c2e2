"""The words a workload is described in, shared by the ensemble file, the executors and
supervision, so that a value read from YAML is the value an executor or a supervisor
acts on, with no mapping between look-alike enums.

Values are NuNet ensemble v1 spellings: the YAML loader matches them exactly, and the
generated `spec/ensemble.md` and JSON Schema list them. This module imports nothing
from `dms.ensemble`, `dms.executor` or `dms.supervise`; they all import it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExecutorKind(enum.Enum):
    """Which executor runs a workload."""

    DOCKER = "docker"
    FIRECRACKER = "firecracker"
    PROCESS = "process"


class WorkloadKind(enum.Enum):
    """A service runs until stopped (health checked, restarted); a task runs to completion."""

    SERVICE = "service"
    TASK = "task"


class HealthCheckKind(enum.Enum):
    """How health is probed: a command in the workload's context, an HTTP GET, a TCP connect."""

    COMMAND = "command"
    HTTP = "http"
    TCP = "tcp"


class ResponseMatch(enum.Enum):
    """How a probe's output (command) or body (http) is compared with the expected value."""

    STRING = "string"  # equal, once surrounding whitespace is stripped from both (NuNet)
    CONTAINS = "contains"  # the value occurs in the output
    REGEX = "regex"  # re.search of the value (a bounded pattern) finds a match


class Recovery(enum.Enum):
    """What is done when a supervised thing (an allocation, or a node's provider) fails."""

    STAY_DOWN = "stay_down"  # report the failure, leave it down
    RESTART = "restart"  # restart in place, with backoff, until it crash-loops
    REDEPLOY = "redeploy"  # ask the orchestrator to place it elsewhere


class SupervisorStrategy(enum.Enum):
    """Erlang/OTP restart strategies over children in start (`depends_on`) order."""

    ONE_FOR_ONE = "OneForOne"  # restart only the failed child
    ALL_FOR_ONE = "AllForOne"  # restart every child
    REST_FOR_ONE = "RestForOne"  # restart the failed child and those started after it

    def affected(self, order: Sequence[str], failed: str) -> list[str]:
        """The children to restart, in start order, when `failed` fails."""
        if self is SupervisorStrategy.ONE_FOR_ONE:
            return [failed]
        if self is SupervisorStrategy.ALL_FOR_ONE:
            return list(order)
        return list(order[order.index(failed) :])


class AllocationRecovery(enum.Enum):
    """An allocation's `failure_recovery` as NuNet spells it: either stay down, or restart
    with an OTP strategy over the allocations of its node. It is a `Recovery` plus a
    `SupervisorStrategy`, written as one word."""

    STAY_DOWN = "stay_down"
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"

    @property
    def recovery(self) -> Recovery:
        return Recovery.STAY_DOWN if self is AllocationRecovery.STAY_DOWN else Recovery.RESTART

    @property
    def strategy(self) -> SupervisorStrategy | None:
        """The strategy a restart follows; None when the allocation stays down."""
        return _STRATEGY_OF[self]


_STRATEGY_OF = {
    AllocationRecovery.STAY_DOWN: None,
    AllocationRecovery.ONE_FOR_ONE: SupervisorStrategy.ONE_FOR_ONE,
    AllocationRecovery.ONE_FOR_ALL: SupervisorStrategy.ALL_FOR_ONE,
    AllocationRecovery.REST_FOR_ONE: SupervisorStrategy.REST_FOR_ONE,
}
