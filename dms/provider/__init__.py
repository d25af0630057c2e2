"""The provider's side of a deployment, as pure logic: what this machine offers.

    offered = OnboardingLimits(cpu=Share(at_most=4), ram=Share(at_most=8 * 2**30)).apply(machine)

No trio, no I/O and no clock. The actors that carry these over the network live above
this package.
"""

from dms.provider._capacity import Capacity, GpuDevice, InvalidCapacity, millicores
from dms.provider._limits import InvalidLimit, OnboardingLimits, Share

__all__ = [
    "Capacity",
    "GpuDevice",
    "InvalidCapacity",
    "InvalidLimit",
    "OnboardingLimits",
    "Share",
    "millicores",
]
