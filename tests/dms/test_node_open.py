"""`open_node` as a user meets it: plain exceptions, early address errors."""

from __future__ import annotations

import pytest
import trio

import dms
from dms.net import BadAddress, MemoryNetwork


async def test_an_exception_raised_in_the_block_comes_out_unwrapped(autojump_clock: object) -> None:
    network = MemoryNetwork()
    with trio.fail_after(10), pytest.raises(dms.RemoteError) as refused:
        async with dms.open_node(listen="memory://server", network=network) as server, \
                dms.open_node(network=network, bootstrap=["memory://server"]) as client:
            await client.mesh.wait_connected()
            await client.root.invoke(server.root.handle, "/not/granted")
    assert refused.value.name == "InvalidClaim"


@pytest.mark.parametrize(("option", "address"), [
    ("listen", "udp://example:1"), ("bootstrap", "nowhere"),
    ("listen", "ws://127.0.0.1:7001/path"), ("bootstrap", "ws://127.0.0.1:7001/?q=1"),
])
async def test_a_malformed_address_fails_at_once_naming_it(option: str, address: str) -> None:
    kwargs = {"listen": address} if option == "listen" else {"bootstrap": [address]}
    with trio.fail_after(5), pytest.raises(BadAddress) as bad:
        async with dms.open_node(**kwargs):  # type: ignore[arg-type]
            pass
    assert address in str(bad.value)


@pytest.mark.parametrize("anchor", ["foo", "did:key:zNotAKey", "did:web:example.com"])
async def test_an_anchor_that_is_not_a_did_key_is_refused_naming_it(anchor: str) -> None:
    with pytest.raises(ValueError, match="anchor"):
        async with dms.open_node(network=MemoryNetwork(), anchors=[anchor]):
            pass


async def test_a_key_that_is_not_a_signing_key_is_refused_saying_what_to_pass() -> None:
    with pytest.raises(TypeError, match="key_name"):
        async with dms.open_node("node", network=MemoryNetwork()):  # type: ignore[arg-type]
            pass


async def test_args_that_are_not_a_map_are_refused_before_signing(autojump_clock: object) -> None:
    async with dms.open_node(network=MemoryNetwork()) as node:
        with pytest.raises(TypeError, match="args must be a dict"):
            await node.root.invoke(node.root.handle, "/x", [1, 2])  # type: ignore[arg-type]


async def test_a_port_in_use_is_a_plain_listen_failed_not_an_exception_group() -> None:
    from dms.net import ListenFailed

    with trio.fail_after(10):
        async with dms.open_node(listen="ws://127.0.0.1:0") as first:
            assert first.address is not None
            with pytest.raises(ListenFailed) as failed:
                async with dms.open_node(listen=first.address):
                    pass  # pragma: no cover  (never reached)
    assert failed.value.address == first.address
