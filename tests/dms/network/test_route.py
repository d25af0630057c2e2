"""The pump's per-packet decision, without a kernel."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest

from dms.network import PacketDrop, PacketRouter

A, B = IPv4Address("10.1.2.2"), IPv4Address("10.1.2.3")


def ipv4(source: IPv4Address, destination: IPv4Address, header: int = 0) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, source.packed,
                     destination.packed)
    return b"\x00" * header + ip + b"\x00" * 8


@pytest.fixture
def router() -> PacketRouter:
    router = PacketRouter()
    router.add("a", A)
    router.add("b", B)
    return router


def test_a_packet_to_a_member_goes_to_that_member(router: PacketRouter) -> None:
    assert router.route("a", ipv4(A, B)) == "b"
    assert router.route("b", ipv4(B, A)) == "a"
    assert router.forwarded == 2


def test_a_member_speaking_as_another_is_dropped_and_counted(router: PacketRouter) -> None:
    assert router.route("a", ipv4(B, B)) is PacketDrop.SPOOFED_SOURCE
    assert router.route("a", ipv4(IPv4Address("10.9.9.9"), B)) is PacketDrop.SPOOFED_SOURCE
    assert router.dropped[PacketDrop.SPOOFED_SOURCE] == 2 and router.forwarded == 0


def test_packets_to_no_member_from_no_member_or_not_ipv4_are_dropped(router: PacketRouter) -> None:
    assert router.route("a", ipv4(A, IPv4Address("10.1.2.99"))) is PacketDrop.UNKNOWN_DESTINATION
    assert router.route("ghost", ipv4(A, B)) is PacketDrop.NOT_A_MEMBER
    assert router.route("a", b"\x60" + bytes(40)) is PacketDrop.NOT_IPV4
    assert router.route("a", bytes(19)) is PacketDrop.TOO_SHORT


def test_a_removed_member_receives_nothing_and_its_address_can_be_reused(router: PacketRouter) -> None:
    router.remove("b")
    assert router.route("a", ipv4(A, B)) is PacketDrop.UNKNOWN_DESTINATION
    router.add("c", B)
    assert router.route("a", ipv4(A, B)) == "c"


def test_one_address_cannot_belong_to_two_members(router: PacketRouter) -> None:
    with pytest.raises(ValueError, match="already a's"):
        router.add("c", A)


def test_the_offload_header_is_skipped_before_the_ip_header() -> None:
    router = PacketRouter(header=10)
    router.add("a", A)
    router.add("b", B)
    assert router.route("a", ipv4(A, B, header=10)) == "b"
    assert isinstance(router.route("a", ipv4(A, B)), PacketDrop)  # read without its header
