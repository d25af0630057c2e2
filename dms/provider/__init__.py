"""The provider's side of a deployment, as pure logic: what this machine offers, whether
to bid for a request or decline it (and why), and the reservation book that keeps what
every deployment holds exact.

    offered = OnboardingLimits(cpu=Share(at_most=4), ram=Share(at_most=8 * 2**30)).apply(machine)
    book = ReservationBook(offered)
    decision = decide(my_peer, book.free(now), request)   # .bid and/or .decline
    reservation = book.reserve(deployment_id, "web", resources, ports, now, 30, owner=orchestrator)
    book.allocate(reservation.id, now)

The logic has no trio, no I/O and no clock: time is the `now` each call is given.
The roles that carry it over the network (`open_provider`, `ProviderService`,
`AllocationRole`) keep what they hold and run in the node's store, and a restarted
provider re-adopts the workloads it left running (spec/provider.md, "Restart");
`reap_leftovers` removes them without a provider (for `dms dev`).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dms.provider import _wire as wire
    from dms.provider._allocation import AllocationRole
    from dms.provider._ask import InvalidRequest
    from dms.provider._book import ReservationBook
    from dms.provider._capacity import Capacity, GpuDevice, InvalidCapacity, millicores
    from dms.provider._decide import Decision, decide
    from dms.provider._decline import REQUIREMENTS, Decline, Unmet
    from dms.provider._limits import InvalidLimit, OnboardingLimits, Share
    from dms.provider._network import (
        HostedNetworks,
        NetworkUnavailable,
        SubnetClash,
        namespace_prefix,
    )
    from dms.provider._open import ProviderConfig, measure_machine, open_provider
    from dms.provider._reap import Reaped, reap_leftovers
    from dms.provider._reservation import (
        AlreadyReserved,
        BookSnapshot,
        ForeignDeployment,
        InsufficientCapacity,
        InvalidSnapshot,
        LeaseExpired,
        Reservation,
        ReservationError,
        TooManyReservations,
        UnknownReservation,
    )
    from dms.provider._service import ProviderService
    from dms.provider._workdir import WorkDirInUse
    from dms.store import ReservationState
else:
    from dms._exports import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {
        "dms.provider._allocation": ("AllocationRole",),
        "dms.provider._ask": ("InvalidRequest",),
        "dms.provider._book": ("ReservationBook",),
        "dms.provider._capacity": ("Capacity", "GpuDevice", "InvalidCapacity", "millicores"),
        "dms.provider._decide": ("Decision", "decide"),
        "dms.provider._decline": ("REQUIREMENTS", "Decline", "Unmet"),
        "dms.provider._limits": ("InvalidLimit", "OnboardingLimits", "Share"),
        "dms.provider._network": (
            "HostedNetworks", "NetworkUnavailable", "SubnetClash", "namespace_prefix",
        ),
        "dms.provider._open": ("ProviderConfig", "measure_machine", "open_provider"),
        "dms.provider._reap": ("Reaped", "reap_leftovers"),
        "dms.provider._reservation": (
            "AlreadyReserved", "BookSnapshot", "ForeignDeployment", "InsufficientCapacity",
            "InvalidSnapshot", "LeaseExpired", "Reservation", "ReservationError",
            "TooManyReservations", "UnknownReservation",
        ),
        "dms.provider._service": ("ProviderService",),
        "dms.provider._workdir": ("WorkDirInUse",),
        "dms.store": ("ReservationState",),
    }, aliases={"wire": "dms.provider._wire"})

__all__ = [
    "HostedNetworks",
    "NetworkUnavailable",
    "namespace_prefix",
    "AllocationRole",
    "ProviderConfig",
    "ProviderService",
    "WorkDirInUse",
    "measure_machine",
    "open_provider",
    "Reaped",
    "reap_leftovers",
    "wire",
    "REQUIREMENTS",
    "AlreadyReserved",
    "BookSnapshot",
    "Capacity",
    "Decision",
    "Decline",
    "ForeignDeployment",
    "GpuDevice",
    "InsufficientCapacity",
    "InvalidCapacity",
    "InvalidLimit",
    "InvalidRequest",
    "InvalidSnapshot",
    "LeaseExpired",
    "OnboardingLimits",
    "Reservation",
    "ReservationBook",
    "ReservationError",
    "ReservationState",
    "Share",
    "SubnetClash",
    "TooManyReservations",
    "UnknownReservation",
    "Unmet",
    "decide",
    "millicores",
]
