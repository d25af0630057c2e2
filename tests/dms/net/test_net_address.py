"""`parse_node_address`: the one parser of the addresses nodes listen on and dial."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dms.net import BadAddress
from dms.net._address import NodeAddress, parse_node_address


@pytest.mark.parametrize(("address", "parsed"), [
    ("tcp://127.0.0.1:7000", NodeAddress("tcp", "127.0.0.1", 7000)),
    ("tcp://node.example:0", NodeAddress("tcp", "node.example", 0)),
    ("tcp://[::1]:7000", NodeAddress("tcp", "::1", 7000)),
    ("tcp://127.0.0.1:7000/", NodeAddress("tcp", "127.0.0.1", 7000)),
    ("ws://127.0.0.1:7000", NodeAddress("ws", "127.0.0.1", 7000)),
    ("ws://proxy.example:80/dms/node-1", NodeAddress("ws", "proxy.example", 80, "/dms/node-1")),
])
def test_both_schemes_parse_to_host_port_and_path(address: str, parsed: NodeAddress) -> None:
    assert parse_node_address(address) == parsed


@pytest.mark.parametrize(("address", "problem"), [
    ("udp://127.0.0.1:1", "'udp' is not a scheme nodes speak"),
    ("http://127.0.0.1:1", "'http' is not a scheme nodes speak"),
    ("127.0.0.1:7000", "starts with its scheme"),
    ("tcp://127.0.0.1", "needs a host and a port"),
    ("tcp://:7000", "needs a host and a port"),
    ("tcp://127.0.0.1:70000", "out of range"),
    ("tcp://127.0.0.1:port", "Port could not be cast"),
    ("tcp://127.0.0.1:7000/path", "a tcp:// address has no path"),
    ("ws://127.0.0.1:7000/?q=1", "no query or fragment"),
    ("ws://127.0.0.1:7000/#top", "no query or fragment"),
    ("ws://127.0.0.1:7000?", "no query or fragment"),
    ("ws://user:secret@127.0.0.1:7000", "no user info"),
    (" tcp://127.0.0.1:7000", "no spaces or control characters"),
    ("tcp://127.0.0.1:7000\n", "no spaces or control characters"),
    ("ws://127.0.0.1:7000/a\"b", "characters a URL path cannot"),
])
def test_a_bad_address_is_refused_naming_it_and_the_problem(address: str, problem: str) -> None:
    with pytest.raises(BadAddress, match=problem) as refused:
        parse_node_address(address)
    assert repr(address) in str(refused.value)


def test_a_listen_address_has_no_path() -> None:
    with pytest.raises(BadAddress, match="listens on ws://HOST:PORT, with no path"):
        parse_node_address("ws://127.0.0.1:7000/dms", listening=True)
    assert parse_node_address("ws://127.0.0.1:7000/", listening=True).path == "/"


def test_a_single_scheme_caller_refuses_the_other_scheme() -> None:
    with pytest.raises(BadAddress, match="speaks tcp://, not ws://"):
        parse_node_address("ws://127.0.0.1:7000", scheme="tcp")


def test_a_non_string_is_refused_naming_its_type() -> None:
    with pytest.raises(BadAddress, match="not int"):
        parse_node_address(7000)  # type: ignore[arg-type]


@given(scheme=st.sampled_from(["tcp", "ws"]),
       host=st.sampled_from(["127.0.0.1", "::1", "node.example", "fe80::1"]),
       port=st.integers(0, 65535),
       path=st.sampled_from(["/", "/dms", "/a/b-c_d.e"]))
def test_the_canonical_form_parses_back_to_the_same_address(
        scheme: str, host: str, port: int, path: str) -> None:
    address = NodeAddress(scheme, host, port, "/" if scheme == "tcp" else path)  # type: ignore[arg-type]
    assert parse_node_address(str(address)) == address


@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_bad_address(text: str) -> None:
    try:
        parsed = parse_node_address(text)
    except BadAddress:
        return
    assert parse_node_address(str(parsed)) == parsed
