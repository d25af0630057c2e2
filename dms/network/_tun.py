"""TUN interfaces: open one inside a namespace, give it an address, and read or write
whole IP packets through its descriptor.

With `offload`, the device carries a virtio-net header before each packet (IFF_VNET_HDR)
and accepts TSO/checksum offload, so the kernel hands the pump ~64 KiB TCP segments
instead of MTU-sized ones: the pump's cost is per packet, so this is most of its speed.
Both ends of a local pump then speak the same header, which is forwarded untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import attrs
import trio

from dms.network._errors import NamespaceError
from dms.network._netns import entered, run_ip

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
VNET_HEADER = 10  # struct virtio_net_hdr
MTU = 1400
TXQUEUELEN = 1000


@attrs.frozen
class TunDevice:
    """An open TUN interface inside `namespace`. `header` is the bytes before each
    packet (VNET_HEADER with offload, else 0). The descriptor keeps the interface,
    and so its namespace, alive: `close` it before deleting the namespace."""

    namespace: str
    name: str
    fd: int
    address: IPv4Address
    header: int

    def close(self) -> None:
        # wake a task still waiting on it (trio's rule before closing); outside trio
        # (RuntimeError) nobody waits
        with contextlib.suppress(RuntimeError):
            trio.lowlevel.notify_closing(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def open_tun(namespace: str, address: IPv4Address, subnet: IPv4Network, *, name: str = "dms0",
             offload: bool = False, mtu: int = MTU, txqueuelen: int = TXQUEUELEN) -> TunDevice:
    """A TUN interface `name` in `namespace`, up, holding `address` with `subnet`
    routed through it; non-blocking. The descriptor is closed again if any step fails."""
    with entered(namespace):
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise NamespaceError("/dev/net/tun", exc.strerror or str(exc)) from None
    try:
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
            if offload:
                fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HEADER))
                fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
        except OSError as exc:
            raise NamespaceError(f"TUN {name} in {namespace}", exc.strerror or str(exc)) from None
        _ipv4_only(namespace, name)
        run_ip("addr", "add", f"{address}/{subnet.prefixlen}", "dev", name, namespace=namespace)
        run_ip("link", "set", name, "mtu", str(mtu), "txqueuelen", str(txqueuelen), "up",
               namespace=namespace)
    except BaseException:
        os.close(fd)
        raise
    return TunDevice(namespace, name, fd, address, VNET_HEADER if offload else 0)


def _ipv4_only(namespace: str, name: str) -> None:
    """No IPv6 on the interface: the private network is IPv4, and the kernel's router
    solicitations would only be dropped by the pump."""
    with entered(namespace), contextlib.suppress(OSError):  # a kernel without IPv6
        Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")


def readdress_tun(device: TunDevice, address: IPv4Address, subnet: IPv4Network,
                  old_subnet: IPv4Network) -> TunDevice:
    """`device` holding `address` in `subnet` instead of its address in `old_subnet`
    (a renumbered ensemble); each subnet's route comes and goes with its address. The
    new address is added before the old one is removed and taken away again if that
    fails, so a failure leaves the interface as it was (NamespaceError naming it)."""
    if address == device.address and subnet == old_subnet:
        return device
    new, old = f"{address}/{subnet.prefixlen}", f"{device.address}/{old_subnet.prefixlen}"
    run_ip("addr", "add", new, "dev", device.name, namespace=device.namespace)
    try:
        run_ip("addr", "del", old, "dev", device.name, namespace=device.namespace)
    except BaseException:
        with contextlib.suppress(NamespaceError):
            run_ip("addr", "del", new, "dev", device.name, namespace=device.namespace)
        raise
    return attrs.evolve(device, address=address)
