"""Which provider commands are replay-harmless (taken with their id kept in memory
only when the replay log's disk is full): the allocation status poll alone. Each one
added widens what a restart may run twice, so it must be argued in spec/security.md
(fault model, State directory) and listed here."""

from __future__ import annotations

from dms.actor._behavior import marked_behaviors
from dms.provider._allocation import AllocationRole
from dms.provider._locator import ProviderLocator
from dms.provider._service import ProviderService
from dms.provider._wire import ALLOCATION_STATUS


def test_only_the_allocation_status_poll_is_replay_harmless() -> None:
    harmless = {
        (role.__name__, spec.command)
        for role in (AllocationRole, ProviderService, ProviderLocator)
        # uninitialised instances: only their methods' marks are read
        for spec in marked_behaviors(object.__new__(role))
        if spec.replay_harmless
    }
    assert harmless == {("AllocationRole", ALLOCATION_STATUS)}
