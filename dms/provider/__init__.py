"""The provider's side of a deployment, as pure logic: what this machine offers, and
whether to bid for a request or decline it (and why).

    offered = OnboardingLimits(cpu=Share(at_most=4), ram=Share(at_most=8 * 2**30)).apply(machine)
    decision = decide(my_peer, offered, request)   # .bid and/or .decline

No trio, no I/O and no clock. The actors that carry these over the network live above
this package.
"""

from dms.provider._ask import InvalidRequest
from dms.provider._capacity import Capacity, GpuDevice, InvalidCapacity, millicores
from dms.provider._decide import Decision, decide
from dms.provider._decline import REQUIREMENTS, Decline, Unmet
from dms.provider._limits import InvalidLimit, OnboardingLimits, Share

__all__ = [
    "REQUIREMENTS",
    "Capacity",
    "Decision",
    "Decline",
    "GpuDevice",
    "InvalidCapacity",
    "InvalidLimit",
    "InvalidRequest",
    "OnboardingLimits",
    "Share",
    "Unmet",
    "decide",
    "millicores",
]
