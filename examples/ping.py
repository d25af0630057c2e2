"""Ping between two nodes over real TCP links: refused without a grant, answered with one.

    python examples/ping.py                      # both nodes in this process
    python examples/ping.py key client.key       # the three steps of examples/two_processes.md
    python examples/ping.py serve --grant-to DID --grant-file ping.ucan
    python examples/ping.py ping ADDRESS --key client.key --grant-file ping.ucan

The server's root actor serves `/demo/ping`. A node may invoke it only with a chain of
delegations rooted at the server, so the first ping (no grant) comes back refused,
named by its UCAN failure, and the second (after the server grants `/demo`) is answered.
Exits 0 when both happen as described.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import trio

from dms.actor import Handle, Message, RemoteError
from dms.net import NetError
from dms.node import Node, open_node
from ucan import Delegation, SigningKey, UcanError, decode_container, encode_container_text

PING = "/demo/ping"


def serve_ping(node: Node) -> None:
    @node.root.behavior(PING)
    async def ping(message: Message) -> Any:
        return {"pong": message.args.get("seq")}


async def ping_once(client: Node, server: Handle, seq: int) -> str:
    """One ping; what happened, as a line to print."""
    started = trio.current_time()
    try:
        reply = await client.root.invoke(server, PING, {"seq": seq}, timeout=5)
    except RemoteError as refused:
        return f"refused: {refused.name}"
    rtt = (trio.current_time() - started) * 1000
    return f"pong {reply['pong']} in {rtt:.2f} ms"


async def server_handle(client: Node) -> Handle:
    """The root actor of the (only) node the client is connected to."""
    assert client.mesh is not None
    await client.mesh.wait_connected()
    peer = client.mesh.connected_peers()[0]
    return Handle(peer, peer, peer)


async def both_in_one_process() -> int:
    with trio.fail_after(30):
        async with open_node(listen="tcp://127.0.0.1:0") as server:
            serve_ping(server)
            assert server.address is not None
            print(f"server {server.did} at {server.address}")
            async with open_node(listen="tcp://127.0.0.1:0", bootstrap=[server.address]) as client:
                print(f"client {client.did}")
                handle = await server_handle(client)
                without = await ping_once(client, handle, 1)
                print(f"without a grant: {without}")
                client.add_proofs(server.grant(client.did, "/demo", lifetime=600))
                with_grant = await ping_once(client, handle, 2)
                print(f"with a grant:    {with_grant}")
    ok = without.startswith("refused: ") and with_grant.startswith("pong 2 ")
    return 0 if ok else 1


# -- two processes -----------------------------------------------------------------------


def make_key(path: Path) -> int:
    if path.exists():  # a new key would make every grant to the old one useless
        print(f"{path} exists: keep it, or remove it first", file=sys.stderr)
        return 2
    key = SigningKey.generate()
    path.write_text(key.seed.hex() + "\n")
    path.chmod(0o600)
    print(key.did)
    return 0


async def serve(grant_to: str | None, grant_file: Path | None, port: int) -> int:
    async with open_node(listen=f"tcp://127.0.0.1:{port}") as server:
        serve_ping(server)
        if grant_to and grant_file:
            grant = server.grant(grant_to, "/demo", lifetime=3600)
            grant_file.write_text(encode_container_text([grant.envelope]) + "\n")
            print(f"granted /demo to {grant_to} in {grant_file}")
        print(f"serving {PING} at {server.address}", flush=True)
        await trio.sleep_forever()
    raise AssertionError("sleep_forever returned")


async def ping(address: str, key_file: Path, grant_file: Path | None) -> int:
    key = SigningKey.from_seed(bytes.fromhex(key_file.read_text().strip()))
    with trio.fail_after(30):
        async with open_node(key, bootstrap=[address]) as client:
            with trio.move_on_after(10):
                handle = await server_handle(client)
            if not client.mesh.connected_peers():
                print(f"cannot reach {address}: no handshake within 10 s "
                      f"({client.metrics().get('net.mesh.dial_failures', 0)} dials failed)",
                      file=sys.stderr)
                return 2
            if grant_file is not None:
                tokens = decode_container(grant_file.read_text())
                client.add_proofs(*(Delegation.decode(token) for token in tokens))
            outcome = await ping_once(client, handle, 1)
    print(f"{client.did[:24]}... -> {handle.did[:24]}...: {outcome}")
    return 0 if outcome.startswith("pong") else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step")
    key = steps.add_parser("key", help="make a client key file and print its DID")
    key.add_argument("path", type=Path)
    server = steps.add_parser("serve", help="run the server until Ctrl-C")
    server.add_argument("--grant-to", help="a client DID to grant /demo to")
    server.add_argument("--grant-file", type=Path, help="where to write that grant")
    server.add_argument("--port", type=int, default=0)
    client = steps.add_parser("ping", help="ping a server once")
    client.add_argument("address")
    client.add_argument("--key", type=Path, required=True)
    client.add_argument("--grant-file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.step == "key":
            return make_key(args.path)
        if args.step == "serve":
            return trio.run(serve, args.grant_to, args.grant_file, args.port)
        if args.step == "ping":
            return trio.run(ping, args.address, args.key, args.grant_file)
        return trio.run(both_in_one_process)
    except KeyboardInterrupt:
        return 0 if args.step == "serve" else 130
    except (NetError, UcanError, OSError, ValueError) as mistake:  # one line, no traceback
        print(f"{args.step or 'ping'}: {mistake}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
