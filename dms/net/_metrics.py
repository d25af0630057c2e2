"""Counters for what the network layer did, readable as a plain dict.

One `Metrics` is shared by a transport, its links and the mesh on top, so a node has
one place to read. Names are dotted, `<layer>.<what>`:

- ``link.frames_out`` / ``link.frames_in`` / ``link.bytes_out`` / ``link.bytes_in``
  (bytes on the carrier, sealed)
- ``link.frames_direct`` (frames a TCP link wrote from the sending task, its writer
  idle), ``link.frames_coalesced`` (frames that left in one write with others)
- ``link.handshakes_ok`` / ``link.handshakes_failed``
- ``link.dropped_busy`` (send buffer full), ``link.dropped_loss`` (memory transport
  simulated loss), ``link.rejected_replayed`` / ``_reordered`` / ``_tampered`` /
  ``_oversize`` (received frames that closed the link)
- ``mesh.*``: see `dms.net._mesh`.
"""

from __future__ import annotations

from collections import Counter


class Metrics(Counter[str]):
    """A `collections.Counter` of event names; missing names read as 0."""
