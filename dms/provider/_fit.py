"""Whether one node's ask fits what a provider has free, and if not, by how much.

The bid decision and the reservation book ask the same question (the one before a
bid, the other at commit time, when the answer may have changed), so it is answered
once, here, in the words a decline carries.
"""

from __future__ import annotations

from collections import Counter

from ._ask import Ask
from ._capacity import Capacity
from ._decline import Unmet
from ._gpus import describe_gpu, matchable


def _ports(ask: Ask, free: Capacity) -> Unmet | None:
    taken = sorted(ask.fixed_ports - free.public_ports)
    if not taken and len(ask.ports) <= len(free.public_ports):
        return None
    return Unmet(ask.node, "ports", needed=len(ask.ports), available=len(free.public_ports),
                 asked=tuple(str(port) for port in taken))


def _gpus(ask: Ask, free: Capacity) -> Unmet | None:
    if not ask.gpus:
        return None
    served = matchable(ask.gpus, free.gpus)
    if served == len(ask.gpus):
        return None
    # kinds compare as cards do, case-insensitively; each is shown as first spelled
    spelled: dict[str, str] = {}
    kinds = Counter(spelled.setdefault(describe_gpu(gpu).casefold(), describe_gpu(gpu)) for gpu in ask.gpus)
    asked = tuple(kinds) if len(kinds) == 1 else tuple(f"{n} {kind}" for kind, n in kinds.items())
    return Unmet(ask.node, "gpu", needed=len(ask.gpus), available=served, asked=asked)


def shortfalls(ask: Ask, free: Capacity) -> tuple[Unmet, ...]:
    """Every resource of `ask` that `free` cannot cover (ports, cpu, ram, disk, gpu, in
    that order); empty when it fits."""
    found = [_ports(ask, free)]
    for name, needed, available in (
        ("cpu", ask.millicores, free.millicores),
        ("ram", ask.ram, free.ram),
        ("disk", ask.disk, free.disk),
    ):
        if needed > available:
            found.append(Unmet(ask.node, name, needed=needed, available=available))
    found.append(_gpus(ask, free))
    return tuple(u for u in found if u is not None)
