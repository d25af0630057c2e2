"""Which GPU cards can serve which GPU asks.

An ask names what it needs (vendor, model, at least so much memory; empty = any), a
card is what it is. Asks differ, so "does it fit" is a bipartite matching, not a count:
two asks for an A100 do not fit on one A100 and one T4 even though two cards are free.
Cards are tried smallest first, so a modest ask leaves the big cards for those that
need them.
"""

from __future__ import annotations

from collections.abc import Sequence

from dms.ensemble._requirements import Gpu
from dms.ensemble._units import format_size

from ._capacity import GpuDevice


def serves(device: GpuDevice, ask: Gpu) -> bool:
    """Vendor and model compare case-insensitively and exactly ("A10" is not "A100");
    memory is a minimum."""
    card = device.gpu
    if ask.vendor and ask.vendor.casefold() != card.vendor.casefold():
        return False
    if ask.model and ask.model.casefold() != card.model.casefold():
        return False
    return card.memory >= ask.memory


def _matching(asks: Sequence[Gpu], devices: Sequence[GpuDevice]) -> dict[int, GpuDevice]:
    """A maximum matching, ask index -> device (augmenting paths: exact, and cheap for
    the handful of cards a machine has). Stops once every card is taken, so a request
    with thousands of asks costs no more than one with as many asks as cards."""
    cards = sorted(devices, key=lambda d: (d.gpu.memory, d.id))
    holder: dict[int, int] = {}  # card index -> ask index

    def place(ask: int, seen: set[int]) -> bool:
        for card, device in enumerate(cards):
            if card in seen or not serves(device, asks[ask]):
                continue
            seen.add(card)
            if card not in holder or place(holder[card], seen):
                holder[card] = ask
                return True
        return False

    for ask in range(len(asks)):
        if len(holder) == len(cards):
            break
        place(ask, set())
    return {ask: cards[card] for card, ask in holder.items()}


def match_gpus(asks: Sequence[Gpu], devices: Sequence[GpuDevice]) -> tuple[GpuDevice, ...] | None:
    """One distinct device per ask, in ask order, or None when no such choice exists."""
    if len(asks) > len(devices):
        return None
    chosen = _matching(asks, devices)
    if len(chosen) < len(asks):
        return None
    return tuple(chosen[ask] for ask in range(len(asks)))


def matchable(asks: Sequence[Gpu], devices: Sequence[GpuDevice]) -> int:
    """How many of `asks` can be served at once."""
    return len(_matching(asks, devices))


def describe_gpu(ask: Gpu) -> str:
    """An ask in words: `nvidia A100 with 40Gi+`; an unconstrained ask is `any`."""
    words = [w for w in (ask.vendor, ask.model) if w]
    if ask.memory:
        words.append(f"with {format_size(ask.memory)}+")
    return " ".join(words) or "any"
