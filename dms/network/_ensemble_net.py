"""One ensemble's network on one host: a namespace per allocation with its TUN and
its resolver socket, the local pump between them, one resolver for all.

Layout of an allocation's namespace (spec/network.md): `lo` up with the resolver on
127.0.0.53:53; `dms0`, a TUN holding the allocation's address with the ensemble's
subnet routed through it; /etc/netns/NAME/resolv.conf naming that resolver, with
`search internal` so a bare allocation name resolves too. Everything made is recorded
as it is made, so `close` (and a failure half-way through `add`) removes exactly it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from ipaddress import IPv4Address, IPv4Network

import attrs
import trio

from dms._nursery import serving_nursery
from dms.network._dns import DnsRecords, Resolver
from dms.network._dns_forward import DnsUpstream
from dms.network._dns_server import Forwarder, QueryBudget, dns_socket, serve_dns
from dms.network._errors import NamespaceError
from dms.network._netns import attach_namespace, create_namespace, delete_namespace, entered
from dms.network._plan import AddressPlan
from dms.network._pump import BATCH, Pump, SendFrame
from dms.network._route import PacketRouter
from dms.network._tun import VNET_HEADER, TunDevice, open_tun, readdress_tun

log = logging.getLogger("dms.network")

RESOLVER = "127.0.0.53"
RESOLV_CONF = f"nameserver {RESOLVER}\nsearch internal\noptions ndots:1 timeout:1 attempts:2\n"


@attrs.define
class _Made:
    """What `_make` got to before it finished or failed."""

    namespace: bool = False
    tun: TunDevice | None = None
    sock: trio.socket.SocketType | None = None
    error: Exception | None = None


class EnsembleNetwork:
    """Made by `ensemble_network`; `add` one allocation at a time (the provider does so
    as it spawns each), `remove` on stop; leaving the context removes the rest."""

    def __init__(self, plan: AddressPlan, resolver: Resolver, pump: Pump,
                 nursery: trio.Nursery, offload: bool, forwarder: Forwarder | None = None,
                 ) -> None:
        self.plan = plan
        self.resolver = resolver
        self.forwarder = forwarder  # shared by every namespace's server: one bound
        self.pump = pump
        self.offload = offload
        self._nursery = nursery
        self._members: dict[str, tuple[str, TunDevice, trio.socket.SocketType, trio.CancelScope]] = {}
        self._adding: set[str] = set()
        self._plan_lock = trio.Lock()  # add and renumber, one at a time

    def namespace_of(self, allocation: str) -> str:
        return self._members[allocation][0]

    async def add(self, allocation: str, namespace: str, *, of_pid: int | None = None,
                  address: IPv4Address | None = None) -> TunDevice:
        """Make `namespace` for `allocation` with its TUN and resolver, and attach it
        to the pump. The kernel work (iproute2, setns) runs in a worker thread, so the
        pump and other tasks keep running meanwhile. On any failure, cancellation
        included, nothing of it remains and the error propagates. With `of_pid`, the
        namespace is the one that process is in (a workload re-adopted after a
        restart), named `namespace` again, its TUN made anew. Waits for a `renumber`
        under way, so the TUN gets the address of the plan in force. `address`: a
        member the plan has none for (a joined node's, at the gateway)."""
        if allocation in self._members or allocation in self._adding:
            raise NamespaceError(f"allocation {allocation}", "already has a namespace here")
        self._adding.add(allocation)
        try:
            async with self._plan_lock:
                return await self._add(allocation, namespace, of_pid, address)
        finally:
            self._adding.discard(allocation)

    async def _add(self, allocation: str, namespace: str, of_pid: int | None,
                   address: IPv4Address | None) -> TunDevice:
        if address is None:
            try:
                address = self.plan.address_of(allocation)
            except KeyError:
                raise NamespaceError(f"allocation {allocation}",
                                     "has no address in the plan") from None
        made = await trio.to_thread.run_sync(self._make, namespace, address, of_pid)
        if made.error is not None:  # clean what was half made here, then raise its error
            await _unmake_off_loop(namespace if made.namespace else None, made.tun, made.sock)
            raise made.error
        assert made.tun is not None and made.sock is not None
        tun, sock = made.tun, made.sock
        try:
            self.pump.attach(allocation, tun)
            scope = trio.CancelScope()
            self._nursery.start_soon(self._serve, sock, scope)
        except BaseException:
            self.pump.detach(allocation)
            await _unmake_off_loop(namespace, tun, sock)
            raise
        self._members[allocation] = (namespace, tun, sock, scope)
        return tun

    async def renumber(self, plan: AddressPlan,
                       outside: Mapping[str, IPv4Address] | None = None) -> None:
        """Take `plan`, the ensemble's newer one (a redeploy moved it to another
        subnet, or added allocations): each allocation here whose address changed gets
        it on its TUN, the pump routes by the new addresses, and later `add`s use it.
        Refused (NamespaceError, nothing changed) when the plan is another ensemble's or
        lacks an allocation that has a namespace here. When one TUN cannot take its
        new address, those already changed are put back and the error propagates: the
        network keeps the plan it had. The workloads' open connections to old
        addresses break; names resolve to the new ones (records are the caller's).
        `outside`: the new addresses of members the plan has none for (a joined
        node's, at the gateway)."""
        if plan.ensemble != self.plan.ensemble:
            raise NamespaceError(f"plan of {plan.ensemble!r}",
                                 f"this network is ensemble {self.plan.ensemble!r}'s")
        wanted = {**plan.as_dict(), **(outside or {})}
        async with self._plan_lock:
            homeless = sorted(set(self._members) - set(wanted))
            if homeless:
                raise NamespaceError(f"allocation {homeless[0]}",
                                     "has a namespace here but no address in the new plan")
            old_subnet = self.plan.subnet
            moved: dict[str, TunDevice] = {}
            try:
                for allocation in list(self._members):
                    member = self._members.get(allocation)
                    if member is None:
                        continue  # removed meanwhile (`remove` takes no lock)
                    if member[1].address == wanted[allocation] and plan.subnet == old_subnet:
                        continue  # the common case: an allocate that renumbers nothing
                    try:
                        moved[allocation] = await trio.to_thread.run_sync(
                            readdress_tun, member[1], wanted[allocation], plan.subnet,
                            old_subnet)
                    except NamespaceError:
                        if allocation in self._members:
                            raise
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._put_back(moved, old_subnet, plan.subnet)
                raise
            for allocation in moved:
                self.pump.detach(allocation)  # first all: one may take another's address
            for allocation, tun in moved.items():
                member = self._members.get(allocation)
                if member is None:
                    continue  # removed meanwhile: its namespace is gone with the TUN
                self._members[allocation] = (member[0], tun, member[2], member[3])
                self.pump.attach(allocation, tun)
            self.plan = plan

    async def _put_back(self, moved: dict[str, TunDevice], old_subnet: IPv4Network,
                        subnet: IPv4Network) -> None:
        for allocation, tun in moved.items():
            member = self._members.get(allocation)
            if member is None or tun.address == member[1].address:
                continue
            try:
                await trio.to_thread.run_sync(readdress_tun, tun, member[1].address,
                                              old_subnet, subnet)
            except NamespaceError as error:
                log.warning("allocation %s keeps %s, not %s: %s", allocation, tun.address,
                            member[1].address, error)

    def _make(self, namespace: str, address: IPv4Address, of_pid: int | None) -> _Made:
        """The kernel work of `add`, in a worker thread. A failure is handed back with
        what was made before it, not cleaned here: the trio socket must be closed on
        the loop (closing it elsewhere raises, and would hide the error)."""
        made = _Made()
        try:
            if of_pid is None:
                create_namespace(namespace, RESOLV_CONF)
            else:
                attach_namespace(namespace, of_pid, RESOLV_CONF)
            made.namespace = True  # ours to delete from here on, not before
            made.tun = open_tun(namespace, address, self.plan.subnet, offload=self.offload)
            with entered(namespace):
                made.sock = dns_socket(RESOLVER, 53)
        except Exception as error:  # noqa: BLE001 - handed to the loop, raised there
            made.error = error
        return made

    async def remove(self, allocation: str) -> None:
        """Detach and delete `allocation`'s namespace; idempotent. The deletion runs
        in a worker thread (`ip netns delete` blocks for as long as the kernel takes to
        tear the namespace down) and is shielded: a cancelled caller still leaves no
        namespace behind, and sees its Cancelled once the deletion is done."""
        member = self._members.pop(allocation, None)
        if member is None:
            return
        namespace, tun, sock, scope = member
        scope.cancel()
        self.pump.detach(allocation)
        await _unmake_off_loop(namespace, tun, sock)

    def replace_records(self, records: DnsRecords) -> None:
        self.resolver.replace(records)

    async def close(self) -> None:
        """Remove every allocation still here, all of them even when the caller is
        cancelled midway (shielded as a whole; the caller sees its Cancelled at its
        next checkpoint); the first failure is raised once all were tried."""
        errors = []
        with trio.CancelScope(shield=True):
            for allocation in list(self._members):
                try:
                    await self.remove(allocation)
                except Exception as exc:  # keep removing the others
                    errors.append(exc)
        if errors:
            raise errors[0]

    async def _serve(self, sock: trio.socket.SocketType, scope: trio.CancelScope) -> None:
        with scope:
            await serve_dns(self.resolver, sock, QueryBudget(), self.forwarder)


def _unmake_descriptors(tun: TunDevice | None, sock: trio.socket.SocketType | None) -> None:
    if sock is not None:
        sock.close()
    if tun is not None:
        tun.close()


async def _unmake_off_loop(namespace: str | None, tun: TunDevice | None,
                           sock: trio.socket.SocketType | None) -> None:
    """Close what holds the namespace (an open TUN or socket would keep it alive; the
    trio socket has to be closed on the loop), then delete it in a worker thread;
    shielded, so that teardown completes even when the caller is being cancelled.
    `namespace` None: none was made."""
    with trio.CancelScope(shield=True):
        try:
            _unmake_descriptors(tun, sock)
        finally:
            if namespace is not None:
                await trio.to_thread.run_sync(delete_namespace, namespace)


@contextlib.asynccontextmanager
async def ensemble_network(plan: AddressPlan, records: DnsRecords, *, offload: bool = False,
                           batch: int = BATCH, send: SendFrame | None = None,
                           dns_upstream: DnsUpstream | None = None,
                           ) -> AsyncIterator[EnsembleNetwork]:
    """The ensemble's network on this host, torn down (every namespace, interface,
    resolver file) on leaving, on error and on cancellation alike. `send(peer, frame)`
    carries frames to other providers' pumps (`pump.grant` says who hosts what;
    `pump.deliver` takes their frames). `dns_upstream`: where names outside
    `.internal` are forwarded (None: they are refused)."""
    router = PacketRouter(VNET_HEADER if offload else 0)
    pump = Pump(plan.ensemble, router, batch, send)
    async with serving_nursery() as nursery:
        await nursery.start(pump.run)
        forwarder = None if dns_upstream is None else Forwarder(dns_upstream)
        network = EnsembleNetwork(plan, Resolver(records), pump, nursery, offload, forwarder)
        try:
            yield network
        finally:
            await network.close()
