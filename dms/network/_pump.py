"""The pump: moves packets between the TUNs of one ensemble's allocations on this host,
one reader task per TUN, and to and from the pumps of other providers in frames.

Each wakeup drains the TUN (up to `batch` packets) before waiting again: a wakeup costs
far more than a read, so one packet per wakeup runs at a fraction of the drained speed
(bench/network_bench.py measures both). Writes are non-blocking; a TUN that cannot take
a packet drops it (counted), as a full NIC queue would: the sender's TCP backs off.

Packets for another provider are gathered per wakeup into one frame per peer
(`Batcher`) and handed to `send(peer, frame)`, the caller's link: synchronous and
non-blocking (a full link raises, the frame is dropped and counted). Frames arriving
from a link go to `deliver(peer, frame)`, which admits only what `Membership` grants.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address

import trio

from dms.network._frame import Batcher, Membership
from dms.network._route import PacketDrop, PacketRouter, RemotePeer
from dms.network._tun import TunDevice

SendFrame = Callable[[str, bytes], None]

BATCH = 64


class Pump:
    """Run with `await nursery.start(pump.run)`; `attach` / `detach` members at any
    time after. Cancelling `run` stops every reader; it closes no descriptor (the
    `TunDevice`s are their owners'). Without `send`, packets for other providers are
    dropped as having no route."""

    def __init__(self, ensemble: str, router: PacketRouter, batch: int = BATCH,
                 send: SendFrame | None = None) -> None:
        self.router = router
        self.batch = batch
        self.send = send
        self.membership = Membership(ensemble, (), vnet=router.header > 0)
        self.frames_sent = 0
        self.frames_unsent = 0
        self._devices: dict[str, TunDevice] = {}
        self._readers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def attach(self, member: str, device: TunDevice) -> None:
        if self._nursery is None:
            raise RuntimeError("the pump is not running: start run() first")
        if device.header != self.router.header:
            raise ValueError(f"{member}'s TUN has a {device.header}-byte header, the pump "
                             f"{self.router.header}")
        self.detach(member)
        self.router.add(member, device.address)
        self._devices[member] = device
        self.membership.set_local(self.router.members().values())
        scope = trio.CancelScope()
        self._readers[member] = scope
        self._nursery.start_soon(self._read, member, device, scope)

    def detach(self, member: str) -> None:
        """Stop reading `member`'s TUN and forget its address; its descriptor stays
        open for its owner to close."""
        scope = self._readers.pop(member, None)
        if scope is not None:
            scope.cancel()
        self._devices.pop(member, None)
        self.router.remove(member)
        self.membership.set_local(self.router.members().values())

    def grant(self, peers: Mapping[str, Iterable[IPv4Address]]) -> None:
        """Link peer -> the ensemble addresses it hosts, replaced whole: where packets
        for those addresses are sent, and whose frames are admitted."""
        listed = {peer: list(addresses) for peer, addresses in peers.items()}
        self.router.set_remotes(listed if self.send is not None else {})
        self.membership.grant(listed)

    def deliver(self, peer: str, frame: bytes) -> int:
        """Write the packets of `frame` (from link peer `peer`) that membership admits
        into the local TUNs; how many were written. Never raises on what was sent."""
        written = 0
        for packet in self.membership.admit(peer, frame):
            at = self.router.header + 16
            member = self.router.local_member(packet[at:at + 4])
            device = self._devices.get(member) if member is not None else None
            if device is None:
                continue
            try:
                os.write(device.fd, packet)
                written += 1
            except OSError:
                self.router.dropped[PacketDrop.WRITE_FAILED] += 1
        return written

    async def _read(self, member: str, device: TunDevice, scope: trio.CancelScope) -> None:
        size = device.header + 65535
        fd, batch, route, devices = device.fd, self.batch, self.router.route, self._devices
        batcher = Batcher(self.membership.tag, vnet=device.header > 0)
        with scope:
            while True:
                try:
                    await trio.lowlevel.wait_readable(fd)
                except OSError:
                    return  # closed before this task first ran: its owner tore it down
                for _ in range(batch):
                    try:
                        packet = os.read(fd, size)
                    except BlockingIOError:
                        break
                    except OSError:
                        return  # the device is gone: its owner is tearing it down
                    target = route(member, packet)
                    if isinstance(target, PacketDrop):
                        continue
                    if isinstance(target, RemotePeer):
                        batcher.add(target.peer, packet)
                        continue
                    try:
                        os.write(devices[target].fd, packet)
                    except (OSError, KeyError):
                        self.router.dropped[PacketDrop.WRITE_FAILED] += 1
                self._send(batcher.flush())

    def _send(self, frames: list[tuple[str, bytes]]) -> None:
        if self.send is None:
            return
        for peer, frame in frames:
            try:
                self.send(peer, frame)
                self.frames_sent += 1
            except Exception:  # the link's failure is the link's: count it, keep pumping
                self.frames_unsent += 1
