"""The local pump: moves packets between the TUNs of one ensemble's allocations on
this host, one reader task per TUN.

Each wakeup drains the TUN (up to `batch` packets) before waiting again: a wakeup costs
far more than a read, so one packet per wakeup runs at a fraction of the drained speed
(bench/network_bench.py measures both). Writes are non-blocking; a TUN that cannot take
a packet drops it (counted), as a full NIC queue would: the sender's TCP backs off.
"""

from __future__ import annotations

import os

import trio

from dms.network._route import PacketDrop, PacketRouter
from dms.network._tun import TunDevice

BATCH = 64


class LocalPump:
    """Run with `await nursery.start(pump.run)`; `attach` / `detach` members at any
    time after. Cancelling `run` stops every reader; it closes no descriptor (the
    `TunDevice`s are their owners')."""

    def __init__(self, router: PacketRouter, batch: int = BATCH) -> None:
        self.router = router
        self.batch = batch
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

    async def _read(self, member: str, device: TunDevice, scope: trio.CancelScope) -> None:
        size = device.header + 65535
        fd, batch, route, devices = device.fd, self.batch, self.router.route, self._devices
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
                    try:
                        os.write(devices[target].fd, packet)
                    except (OSError, KeyError):
                        self.router.dropped[PacketDrop.WRITE_FAILED] += 1
