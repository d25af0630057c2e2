"""The numeric limits of an ensemble file: what fits the wire, and what is sensible.

Requirements travel to providers as DAG-CBOR, whose integers are 64-bit, so every size
(bytes), bandwidth (bits/s) and duration (as nanoseconds) must fit a signed 64-bit
integer; the parsers in `units` enforce that for every field. The resource rules in
`validate` add the sensible bounds of what one allocation (and one node, summed) asks
for. `bounds_reference` renders this table for `spec/ensemble.md`.
"""

from __future__ import annotations

MAX_INT64 = 2**63 - 1
MAX_BYTES = MAX_INT64  # any size, also a node's summed ram and disk
MAX_BITS_PER_SECOND = MAX_INT64
MAX_NANOSECONDS = MAX_INT64  # any duration or rtt: about 292 years
MIN_CORES = 0.001  # one millicore: the finest share a provider can give
MAX_CORES = 1_000_000.0  # per allocation and per node
MIN_MEMORY = 2**20  # ram, disk and gpu memory: 1 MiB; less is a typo (107 B)


def bounds_reference() -> str:
    """The limits as a markdown table (part of the generated field reference)."""
    rows = [
        ("cpu `cores`", f"{MIN_CORES:g} (`{MIN_CORES * 1000:g}m`)", f"{MAX_CORES:.15g} cores, also summed over a node"),
        ("`ram` / `disk` `size`, gpu `memory`", f"{MIN_MEMORY // 2**20}Mi", "2**63-1 bytes (8Ei - 1), also summed over a node"),
        ("volume `size`", "", "2**63-1 bytes"),
        ("`bw`", "", "2**63-1 bits/s"),
        ("durations, `rtt`", "", "2**63-1 ns (about 292 years)"),
    ]
    lines = ["### Bounds", "", "| value | at least | at most |", "|---|---|---|"]
    lines.extend(f"| {name} | {low} | {high} |" for name, low, high in rows)
    lines.append("")
    lines.append("Numbers must be finite (`.inf`, `.nan` and overflowing exponents are refused).")
    return "\n".join(lines)
