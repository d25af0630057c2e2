"""The data plane on one host, with real namespaces and TUNs: TCP from one allocation
to another through the pump, `.internal` names resolving inside the namespaces, drops
counted, and nothing left behind after — also after a failure half-way.

All traffic stays inside the namespaces these tests create: the host namespace only
reads and writes TUN descriptors.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from dms.network import (
    NamespaceError,
    PacketDrop,
    _ensemble_net,
    _tun,
    encode_batch,
    ensemble_network,
    ensemble_tag,
    plan_addresses,
    records_for,
)
from dms.network._netns import entered, namespace_exists, namespace_names

PLAN = plan_addresses("dataplane-test", ["web", "client"], {})
WEB = PLAN.address_of("web")

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); total = 0
while (chunk := c.recv(65536)):
    total += len(chunk)
c.sendall(str(total).encode()); c.close()
"""

CLIENT = """
import json, socket, time
found = {n: socket.gethostbyname(n) for n in ("www.internal", "web.internal", "web")}
try:
    socket.gethostbyname("nope.internal"); found["nope"] = "resolved"
except socket.gaierror as e:
    found["nope"] = e.errno
deadline = time.monotonic() + 10
while True:
    try:
        c = socket.create_connection((found["www.internal"], 8080), timeout=5); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.05)
c.sendall(b"x" * 1_000_000); c.shutdown(socket.SHUT_WR)
found["echo"] = int(c.recv(100)); print(json.dumps(found))
"""


async def run_in(namespace: str, script: str, *args: str) -> str:
    done = await trio.run_process(["ip", "netns", "exec", namespace, sys.executable, "-c",
                                   script, *args], capture_stdout=True, capture_stderr=True)
    return done.stdout.decode()


@pytest.mark.parametrize("offload", [False, True], ids=["plain", "offload"])
async def test_tcp_between_two_allocations_crosses_the_pump_and_names_resolve_inside(
        namespace_prefix: str, offload: bool) -> None:
    web_ns, client_ns = namespace_prefix + "web", namespace_prefix + "client"
    async with ensemble_network(PLAN, records_for(PLAN, {"web": "www"}), offload=offload) as net:
        await net.add("web", web_ns)
        await net.add("client", client_ns)
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_in, web_ns, SERVER, str(WEB))
                found = json.loads(await run_in(client_ns, CLIENT))
        assert found["www.internal"] == found["web.internal"] == found["web"] == str(WEB)
        assert found["nope"] == socket.EAI_NONAME
        assert found["echo"] == 1_000_000
        assert net.pump.router.forwarded > 20  # the pump carried the megabyte
        assert sum(net.pump.router.dropped.values()) == 0
    assert not namespace_exists(web_ns) and not namespace_exists(client_ns)
    assert not Path("/etc/netns", web_ns).exists()


def raw_udp(source: str, destination: str) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 29, 0, 0, 64, 17, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    return header + struct.pack("!HHHH", 9, 9, 9, 0) + b"!"


async def test_spoofed_and_stray_packets_are_dropped_and_counted(namespace_prefix: str) -> None:
    client_ns = namespace_prefix + "client"
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace_prefix + "web")
        await net.add("client", client_ns)
        with entered(client_ns):  # a raw socket of the client's namespace, not the host's
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        with raw:
            raw.sendto(raw_udp(str(WEB), str(WEB)), (str(WEB), 0))  # speaks as web
            stray = str(PLAN.subnet.network_address + 200)
            raw.sendto(raw_udp(str(PLAN.address_of("client")), stray), (stray, 0))
            with trio.fail_after(5):
                router = net.pump.router
                while router.dropped[PacketDrop.UNKNOWN_DESTINATION] < 1 or \
                        router.dropped[PacketDrop.SPOOFED_SOURCE] < 1:
                    await trio.sleep(0.01)
        assert router.forwarded == 0


async def test_leaving_on_an_error_removes_every_namespace(namespace_prefix: str) -> None:
    with pytest.raises(ZeroDivisionError):
        async with ensemble_network(PLAN, records_for(PLAN)) as net:
            await net.add("web", namespace_prefix + "web")
            await net.add("client", namespace_prefix + "client")
            raise ZeroDivisionError
    assert [n for n in namespace_names() if n.startswith(namespace_prefix)] == []


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_a_failure_half_way_through_add_leaves_nothing(
        namespace_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*args: object) -> None:
        raise OSError("resolver socket refused (injected)")

    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        before = open_fds()
        monkeypatch.setattr(_ensemble_net, "dns_socket", no_socket)
        with pytest.raises(OSError, match="injected"):
            await net.add("web", namespace_prefix + "web")
        assert not namespace_exists(namespace_prefix + "web")
        assert not Path("/etc/netns", namespace_prefix + "web").exists()
        assert open_fds() <= before  # the TUN descriptor was closed
        assert net.pump.router.members() == {}


async def test_a_tun_that_cannot_be_configured_is_closed_with_its_namespace(
        namespace_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _tun.run_ip

    def refuse_link(*args: str, namespace: str | None = None) -> str:
        if args[0] == "link":
            raise NamespaceError("ip link set", "refused (injected)")
        return real(*args, namespace=namespace)

    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        before = open_fds()
        monkeypatch.setattr(_tun, "run_ip", refuse_link)
        with pytest.raises(NamespaceError, match="injected"):
            await net.add("web", namespace_prefix + "web")
        assert not namespace_exists(namespace_prefix + "web")
        assert open_fds() <= before


async def test_an_existing_namespace_is_not_taken_over(namespace_prefix: str) -> None:
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace_prefix + "web")
        with pytest.raises(NamespaceError, match="already exists"):
            await net.add("client", namespace_prefix + "web")
        assert namespace_exists(namespace_prefix + "web")  # the first one's, untouched


@pytest.mark.parametrize("offload", [False, True], ids=["plain", "offload"])
async def test_allocations_on_two_providers_talk_through_frames_between_their_pumps(
        namespace_prefix: str, offload: bool) -> None:
    """Two providers' networks on one host, their pumps joined by in-memory links
    (the node's encrypted link is the integration's): the same TCP and DNS checks."""
    to_a, from_b = trio.open_memory_channel[tuple[str, bytes]](256)
    to_b, from_a = trio.open_memory_channel[tuple[str, bytes]](256)
    web_ns, client_ns = namespace_prefix + "web", namespace_prefix + "client"
    records = records_for(PLAN, {"web": "www"})
    async with ensemble_network(PLAN, records, offload=offload,
                                send=lambda peer, frame: to_b.send_nowait(("A", frame))) as a, \
            ensemble_network(PLAN, records, offload=offload,
                             send=lambda peer, frame: to_a.send_nowait(("B", frame))) as b:
        await a.add("web", web_ns)
        await b.add("client", client_ns)
        a.pump.grant({"B": [PLAN.address_of("client")]})
        b.pump.grant({"A": [WEB]})

        async def carry(frames: trio.MemoryReceiveChannel[tuple[str, bytes]],
                        network: _ensemble_net.EnsembleNetwork) -> None:
            async for peer, frame in frames:
                network.pump.deliver(peer, frame)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(carry, from_b, a)
                nursery.start_soon(carry, from_a, b)
                async with trio.open_nursery() as workloads:
                    workloads.start_soon(run_in, web_ns, SERVER, str(WEB))
                    found = json.loads(await run_in(client_ns, CLIENT))
                nursery.cancel_scope.cancel()
        assert found["www.internal"] == str(WEB) and found["nope"] == socket.EAI_NONAME
        assert found["echo"] == 1_000_000
        assert a.pump.frames_sent > 0 and b.pump.frames_sent > 0
        assert b.pump.router.sent_remote > 20

        stranger = b.pump.membership.dropped["not a member"]
        b.pump.deliver("C", encode_batch(ensemble_tag(PLAN.ensemble), [b"\x45" + bytes(39)]))
        assert b.pump.membership.dropped["not a member"] == stranger + 1
    assert [n for n in namespace_names() if n.startswith(namespace_prefix)] == []


@pytest.mark.parametrize("after", [0.0, 0.005, 0.02])
async def test_an_add_cancelled_at_any_point_leaves_nothing_once_the_network_closes(
        namespace_prefix: str, after: float) -> None:
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        with trio.move_on_after(after):
            await net.add("web", namespace_prefix + "web")
    assert [n for n in namespace_names() if n.startswith(namespace_prefix)] == []
    assert not Path("/etc/netns", namespace_prefix + "web").exists()


async def test_one_allocation_gets_one_namespace(namespace_prefix: str) -> None:
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace_prefix + "web")
        with pytest.raises(NamespaceError, match="allocation web: already has a namespace"):
            await net.add("web", namespace_prefix + "web2")
        assert not namespace_exists(namespace_prefix + "web2")
        with pytest.raises(NamespaceError, match="allocation ghost: has no address in the plan"):
            await net.add("ghost", namespace_prefix + "ghost")


async def test_two_concurrent_adds_of_one_allocation_make_one_namespace(
        namespace_prefix: str) -> None:
    outcomes: list[str] = []

    async def add(namespace: str) -> None:
        try:
            await net.add("web", namespace)
            outcomes.append("made " + namespace)
        except NamespaceError:
            outcomes.append("refused")

    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(add, namespace_prefix + "one")
            nursery.start_soon(add, namespace_prefix + "two")
        assert sorted(outcomes)[1] == "refused" and sorted(outcomes)[0].startswith("made ")
        made = [n for n in namespace_names() if n.startswith(namespace_prefix)]
        assert len(made) == 1


async def test_removing_a_namespace_runs_off_the_event_loop_and_completes_when_cancelled(
        namespace_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    real_delete = _ensemble_net.delete_namespace

    def slow_delete(name: str) -> None:
        time.sleep(0.3)  # a kernel slow to tear the namespace down
        real_delete(name)

    monkeypatch.setattr(_ensemble_net, "delete_namespace", slow_delete)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.01)

    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", f"{namespace_prefix}web")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0)
            with trio.move_on_after(0.05) as cancelled:
                await net.remove("web")
            nursery.cancel_scope.cancel()
        assert cancelled.cancel_called  # the caller was cancelled mid-deletion ...
        assert not namespace_exists(f"{namespace_prefix}web")  # ... and it still finished
        assert ticks >= 5  # other tasks ran while `ip netns delete` blocked


def addresses_in(namespace: str) -> list[str]:
    out = _tun.run_ip("-4", "-o", "addr", "show", "dev", "dms0", namespace=namespace)
    return [line.split()[3] for line in out.splitlines()]


def routes_in(namespace: str) -> list[str]:
    out = _tun.run_ip("-4", "route", "show", "dev", "dms0", namespace=namespace)
    return [line.split()[0] for line in out.splitlines()]


async def test_a_renumbered_network_moves_every_tun_route_and_record_to_the_new_subnet(
        namespace_prefix: str) -> None:
    web_ns, client_ns = namespace_prefix + "web", namespace_prefix + "client"
    moved = plan_addresses(PLAN.ensemble, ["web", "client"], {"p": [PLAN.subnet]},
                           previous=PLAN)
    assert not moved.subnet.overlaps(PLAN.subnet)
    new_web = moved.address_of("web")
    async with ensemble_network(PLAN, records_for(PLAN, {"web": "www"})) as net:
        await net.add("web", web_ns)
        await net.add("client", client_ns)
        await net.renumber(moved)
        net.replace_records(records_for(moved, {"web": "www"}))
        assert net.plan == moved
        assert addresses_in(web_ns) == [f"{new_web}/{moved.subnet.prefixlen}"]
        assert routes_in(client_ns) == [str(moved.subnet)]  # the old subnet's route went
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_in, web_ns, SERVER, str(new_web))
                found = json.loads(await run_in(client_ns, CLIENT))
        assert found["www.internal"] == found["web"] == str(new_web)
        assert found["echo"] == 1_000_000
        assert net.pump.router.members() == moved.as_dict()
        assert sum(net.pump.router.dropped.values()) == 0
    assert [n for n in namespace_names() if n.startswith(namespace_prefix)] == []


async def test_a_renumber_one_tun_refuses_puts_the_others_back_and_keeps_the_old_plan(
        namespace_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = plan_addresses(PLAN.ensemble, ["web", "client"], {"p": [PLAN.subnet]},
                           previous=PLAN)
    real = _tun.run_ip

    def refuse_for_web(*args: str, namespace: str | None = None) -> str:
        if args[:2] == ("addr", "add") and namespace == namespace_prefix + "web":
            raise NamespaceError("ip addr add", "refused (injected)")
        return real(*args, namespace=namespace)

    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("client", namespace_prefix + "client")  # renumbered first, by order
        await net.add("web", namespace_prefix + "web")
        monkeypatch.setattr(_tun, "run_ip", refuse_for_web)
        with pytest.raises(NamespaceError, match="injected"):
            await net.renumber(moved)
        monkeypatch.setattr(_tun, "run_ip", real)
        assert net.plan == PLAN
        assert net.pump.router.members() == PLAN.as_dict()
        client = PLAN.address_of("client")
        assert addresses_in(namespace_prefix + "client") == [f"{client}/{PLAN.subnet.prefixlen}"]
        assert addresses_in(namespace_prefix + "web") == [f"{WEB}/{PLAN.subnet.prefixlen}"]


async def test_a_renumber_to_a_plan_without_a_hosted_allocation_is_refused_unchanged(
        namespace_prefix: str) -> None:
    other = plan_addresses(PLAN.ensemble, ["client"], {"p": [PLAN.subnet]}, previous=PLAN)
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        await net.add("web", namespace_prefix + "web")
        with pytest.raises(NamespaceError, match="allocation web: has a namespace here but no "
                                                 "address in the new plan"):
            await net.renumber(other)
        with pytest.raises(NamespaceError, match="this network is ensemble 'dataplane-test'"):
            await net.renumber(plan_addresses("someone-else", ["web"], {}))
        assert net.plan == PLAN
        assert addresses_in(namespace_prefix + "web") == [f"{WEB}/{PLAN.subnet.prefixlen}"]


async def test_a_make_failing_after_its_socket_surfaces_its_own_error_and_leaves_nothing(
        namespace_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step after the resolver socket (switching the worker thread back) fails:
    what was half made (namespace, TUN, socket) is cleaned on the loop, and the error
    is the step's own, not one of the cleanup."""
    import contextlib
    real_entered = _ensemble_net.entered

    @contextlib.contextmanager
    def failing_on_the_way_out(name: str) -> Iterator[None]:
        with real_entered(name):  # the thread really goes back ...
            yield
        raise OSError("setns back refused (injected)")  # ... and then it fails

    web = namespace_prefix + "web"
    async with ensemble_network(PLAN, records_for(PLAN)) as net:
        before = open_fds()
        monkeypatch.setattr(_ensemble_net, "entered", failing_on_the_way_out)
        with pytest.raises(OSError, match="injected") as caught:
            await net.add("web", web)
        assert type(caught.value) is OSError
        assert not namespace_exists(web)
        assert not Path("/etc/netns", web).exists()
        assert open_fds() <= before  # the TUN and the socket were closed
        assert net.pump.router.members() == {}
        monkeypatch.setattr(_ensemble_net, "entered", real_entered)
        await net.add("web", web)  # nothing half-made stands in the way
        assert namespace_exists(web)


async def test_closing_the_network_cancelled_midway_still_removes_every_namespace(
        namespace_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    real_delete = _ensemble_net.delete_namespace
    deleting = []

    def slow_delete(name: str) -> None:
        deleting.append(name)
        time.sleep(0.2)  # a kernel slow to tear each namespace down
        real_delete(name)

    plan = plan_addresses("close-test", ["a", "b", "c"], {})
    names = [namespace_prefix + n for n in "abc"]
    async with ensemble_network(plan, records_for(plan)) as net:
        for allocation, name in zip("abc", names, strict=True):
            await net.add(allocation, name)
        monkeypatch.setattr(_ensemble_net, "delete_namespace", slow_delete)
        with trio.move_on_after(0.05) as cancelled:
            await net.close()
            await trio.sleep(1)  # a checkpoint after close: the cancel lands here
        assert cancelled.cancelled_caught
        assert sorted(deleting) == sorted(names)
        assert not any(namespace_exists(name) for name in names)
        assert net.pump.router.members() == {}
