"""The attackers of bench/flood_bench.py: one flood per attack class of issue 10, and
the hostile inputs they send (not a bench itself: `make bench` runs only `*_bench.py`).

Each flood is a trio task that attacks a victim node on 127.0.0.1 until it is cancelled,
counting what it sent in a `Tally` (`attempts`, plus what kind). They speak the wire
protocol themselves (`RawLink`: the dialer's handshake over a plain websocket, then
sealed frames) so that they can send what no honest node would: low-order keys, bad
handshakes, frames of any size, bytes that are not a mesh message. The builders of
hostile input (`refused_invocation`, `junk_revocation`, `heavy_policy_invocations`,
`malformed_payloads`, ...) are plain functions, usable from tests too.

`run_attacker` is the attacker process: it takes orders on a pipe, so the victim's CPU
and memory are measured apart from the attacker's.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from typing import Any

import attrs
import nacl.signing
import trio
import trio_websocket

from dms.actor import Handle, encode_message
from dms.net._handshake import InitiatorHandshake, ResponderHandshake
from dms.net._link import MAX_CARRIER_MESSAGE, MAX_FRAME
from dms.net._mesh import content_id
from dms.net._mesh_wire import PeerEntry, PeerList, Publish, Unicast, encode
from dms.net._session import SecureSession
from dms.node import DEPLOYMENT_TOPIC, REVOCATION_TOPIC
from ucan import (
    CID,
    Delegation,
    Invocation,
    SigningKey,
    delegate,
    encode_container,
    invoke,
    revoke,
)
from ucan.did import public_key_from_did
from ucan.envelope import Signer

Tally = Counter[str]
"""What a flood did: `attempts` (connections or messages, per the class) and details."""

LOW_ORDER_POINTS = (
    bytes(32),  # zero
    (1).to_bytes(32, "little"),  # u = 1
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
)
"""X25519 public keys of small order: the shared secret is one anyone can compute."""

ATTACK_PREFIX = "/bench/attack"
"""Every command an attacker invokes is below this; the victim counts their dispatches."""


@attrs.frozen
class Target:
    """The victim: where it listens and who it is."""

    host: str
    port: int
    did: str

    @property
    def handle(self) -> Handle:
        return Handle(self.did, self.did, self.did, "root")


@attrs.frozen
class Kit:
    """What the attacks need besides the target: keys (as seeds, to cross a pipe) and
    grants (as envelopes) that the bench made, and how hard to push."""

    target: Target
    replay_seed: bytes = b""
    replay_grant: bytes = b""  # victim -> replay key, /bench/attack/replay
    policy_seed: bytes = b""
    policy_grant: bytes = b""  # victim -> policy key, /bench/attack/policy
    revocation_target: bytes = b""  # raw CID of the grant the bench will really revoke
    connections: int = 8  # links (or sockets) an attack keeps busy at once
    half_open: int = 400  # sockets the half-open flood holds at once
    rotate: int = 250  # messages per link identity before a fresh one is made
    policy_items: int = 100_000
    policy_statements: int = 40


# -- the raw wire ----------------------------------------------------------------------------


@asynccontextmanager
async def websocket_to(target: Target) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A plain websocket to the victim: what comes before its handshake."""
    async with trio_websocket.open_websocket(
        target.host, target.port, "/", use_ssl=False, max_message_size=MAX_CARRIER_MESSAGE,
        connect_timeout=5, disconnect_timeout=1,
    ) as ws:
        yield ws


@attrs.define
class RawLink:
    """A link to the victim with the attacker holding the pieces: the websocket and the
    session keys. `send` seals any payload; `send_raw` sends bytes unsealed."""

    ws: trio_websocket.WebSocketConnection
    session: SecureSession

    async def send(self, payload: bytes) -> None:
        await self.ws.send_message(self.session.seal(payload))

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send_message(data)


def hostile_initiator(key: nacl.signing.SigningKey, ephemeral: bytes | None = None
                      ) -> InitiatorHandshake:
    """The dialer's handshake, announcing `ephemeral` as its X25519 key when given (a
    low-order point: the rest of the handshake is genuine and well signed)."""
    machine = InitiatorHandshake(key)
    if ephemeral is not None:
        machine._greeting = attrs.evolve(machine._greeting, ephemeral=ephemeral)
    return machine


@asynccontextmanager
async def raw_link(target: Target, key: nacl.signing.SigningKey | None = None,
                   *, ephemeral: bytes | None = None) -> AsyncIterator[RawLink]:
    """Dial the victim and run the whole handshake; the link is closed on leaving."""
    key = key or nacl.signing.SigningKey.generate()
    async with websocket_to(target) as ws:
        machine = hostile_initiator(key, ephemeral)
        await ws.send_message(machine.start())
        finish, keys = machine.receive_reply(_as_bytes(await ws.get_message()))
        await ws.send_message(finish)
        yield RawLink(ws, SecureSession(keys))


def _as_bytes(message: bytes | str) -> bytes:
    return message.encode() if isinstance(message, str) else message


async def drain(ws: trio_websocket.WebSocketConnection, tally: Tally, what: str) -> None:
    """Read (and count, unopened) what the victim sends, so its writer is not held up
    by us: the victim then pays for every answer it decides to give."""
    try:
        while True:
            await ws.get_message()
            tally[what] += 1
    except trio_websocket.ConnectionClosed:
        pass


async def keep_going(tally: Tally, attack: Callable[[], Awaitable[None]]) -> None:
    """Run `attack` again and again: whatever the victim does to one attempt (close,
    refuse, time out), the attacker counts it and tries again."""
    while True:
        try:
            await attack()
        except Exception as exc:  # the victim closing on us is the point
            tally[f"ended.{type(exc).__name__}"] += 1
        await trio.sleep(0.001)  # a victim that refuses at once must not make us spin


# -- hostile input ---------------------------------------------------------------------------

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@attrs.frozen
class Identity:
    """A throwaway signer (a `ucan` Signer). `ucan.SigningKey` spells its did:key with a
    general multibase library at ~0.3 ms a key, more than signing a message costs: an
    attacker with fresh keys per message spells it itself, in ~0.03 ms with the key pair."""

    key: nacl.signing.SigningKey
    did: str

    def sign(self, message: bytes) -> bytes:
        return bytes(self.key.sign(message).signature)


_OWN_DIDS: dict[str, bytes] = {}  # did -> public key of the identities made here


def _public_key_of_own_did(did: str) -> bytes:
    """The attacker's stand-in for `ucan.did.public_key_from_did` (~0.07 ms for a DID not
    seen before): it knows the DIDs it made itself without parsing them again."""
    known = _OWN_DIDS.get(did)
    return known if known is not None else public_key_from_did(did)


def sign_tokens_fast() -> None:
    """Make `ucan` take the attacker's DIDs on trust when it builds tokens, in this
    process only (the attacker's): a flood of fresh keys is then limited by signing,
    not by spelling DIDs. Never call it in the victim's process."""
    import ucan.token

    ucan.token.public_key_from_did = _public_key_of_own_did  # type: ignore[attr-defined,assignment]


def fresh_identity() -> Identity:
    key = nacl.signing.SigningKey.generate()
    public = bytes(key.verify_key)
    n = int.from_bytes(b"\xed\x01" + public, "big")  # no leading zero byte to spell
    digits = []
    while n:
        n, digit = divmod(n, 58)
        digits.append(_BASE58[digit])
    did = "did:key:z" + "".join(reversed(digits))
    if len(_OWN_DIDS) > 100_000:
        _OWN_DIDS.clear()
    _OWN_DIDS[did] = public
    return Identity(key, did)



def now_s() -> int:
    return int(time.time())


def signed_request(key: Signer, target: Target, command: str, args: dict[str, Any],
                   proofs: tuple[Delegation, ...] = (), *, ttl: int = 60) -> Invocation:
    """A well-signed request for a reply from `key` to the victim's root actor."""
    now = now_s()
    me = Handle(key.did, key.did, key.did, "root")
    return invoke(key, target.did, command, args, [d.cid for d in proofs],
                  audience=target.did, expiration=now + ttl, issued_at=now,
                  meta={"from": me.to_wire(), "reply": True})


def signed_message(key: Signer, target: Target, command: str, args: dict[str, Any],
                   proofs: tuple[Delegation, ...] = (), *, ttl: int = 60) -> bytes:
    """`signed_request` in a container with its proofs: a message as a node sends it."""
    return encode_message(signed_request(key, target, command, args, proofs, ttl=ttl), proofs)


def refused_invocation(target: Target, n: int) -> bytes:
    """A request by a fresh key with no authority: no proof, or a stranger's delegation
    that claims the victim as its subject."""
    key = fresh_identity()
    command = f"{ATTACK_PREFIX}/refused"
    if n % 2:
        return signed_message(key, target, command, {"n": n})
    stranger = fresh_identity()
    forged = delegate(stranger, key.did, ATTACK_PREFIX, subject=target.did, expiration=None)
    return signed_message(key, target, command, {"n": n}, (forged,))


def junk_revocation(n: int, heavy_issuer: Signer, real_target: CID | None) -> bytes:
    """A valid revocation that matters to nobody: a fresh key's of a random CID; every
    fifth by one busy key; every tenth a stranger's of the grant the bench really
    revokes (which must change nothing)."""
    if real_target is not None and n % 10 == 0:
        return encode_message(revoke(fresh_identity(), real_target))
    key = heavy_issuer if n % 5 == 0 else fresh_identity()
    return encode_message(revoke(key, CID.for_bytes(os.urandom(16))))


def publication(topic: str, payload: bytes, hops: int = 8) -> bytes:
    """A mesh PUBLISH frame with the right content id (it passes the id check)."""
    return encode(Publish(content_id(topic, payload), topic, hops, payload))


def heavy_policy_invocations(kit: Kit, count: int) -> list[bytes]:
    """Requests under a grant holder's re-delegation whose policy walks every item once
    per statement: far past any sane budget, so they must fail closed (MatchError)."""
    holder = SigningKey.from_seed(kit.policy_seed)
    grant = Delegation.decode(kit.policy_grant)
    invoker = fresh_identity()
    heavy = [["all", ".items", [">=", ".", 0]]] * kit.policy_statements
    redelegated = delegate(holder, invoker.did, grant.cmd, subject=grant.sub, policy=heavy,
                           expiration=now_s() + 3600)
    items = list(range(kit.policy_items))
    return [signed_message(invoker, kit.target, f"{ATTACK_PREFIX}/policy",
                           {"items": items, "n": n}, (grant, redelegated), ttl=300)
            for n in range(count)]


def bad_handshake_first_messages(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """First handshake messages that are not a HELLO: (variant, bytes), forever."""
    while True:
        node = bytes(nacl.signing.SigningKey.generate().verify_key)
        yield "garbage", rng.randbytes(rng.randint(0, 4096))
        yield "typed-garbage", b"\x01" + rng.randbytes(rng.randint(0, 200))
        yield "lying-length", b"\x01" + rng.randbytes(32) + node + b"\xff\xff" + b"ws://"
        yield "truncated", hostile_initiator(nacl.signing.SigningKey.generate()).start()[:40]
        yield "empty", b""


def malformed_payloads(rng: random.Random, target: Target) -> Iterator[tuple[str, bytes]]:
    """Sealed-frame payloads that are not what they should be: (variant, bytes), forever."""
    key = fresh_identity()
    while True:
        valid = bytearray(signed_message(key, target, f"{ATTACK_PREFIX}/malformed", {}))
        valid[rng.randrange(len(valid))] ^= 1 << rng.randrange(8)
        stray = delegate(key, key.did, ATTACK_PREFIX, expiration=None)
        yield "random-frame", rng.randbytes(rng.randint(0, 2048))
        yield "unicast-random", encode(Unicast(rng.randbytes(rng.randint(0, 2048))))
        yield "unicast-raw-header-junk", encode(Unicast(b"\x40" + rng.randbytes(512)))
        yield "unicast-junk-tokens", encode(Unicast(encode_container(
            [rng.randbytes(rng.randint(1, 300)) for _ in range(rng.randint(1, 30))])))
        yield "unicast-flipped-bit", encode(Unicast(bytes(valid)))
        yield "unicast-no-invocation", encode(Unicast(encode_container([stray.envelope])))
        yield "publish-junk", publication(DEPLOYMENT_TOPIC, rng.randbytes(300))
        yield "publish-junk-revocation", publication(REVOCATION_TOPIC, rng.randbytes(300))
        yield "peers-junk", encode(PeerList(tuple(
            PeerEntry(rng.randbytes(20).hex(), rng.randbytes(20).hex()) for _ in range(50))))


# -- the floods ------------------------------------------------------------------------------

Flood = Callable[[Kit, Tally], Awaitable[None]]


async def flood_half_open(kit: Kit, tally: Tally) -> None:
    """Sockets that connect and never finish: TCP only, a websocket and silence, or a
    HELLO and never the FINISH. Each is reopened as soon as the victim drops it."""
    target = kit.target

    async def tcp_only() -> None:
        tally["attempts"] += 1
        started = trio.current_time()
        stream = await trio.open_tcp_stream(target.host, target.port)
        async with stream:
            while await stream.receive_some():
                pass
        tally["held_ms.tcp"] += int((trio.current_time() - started) * 1000)
        tally["closed.tcp"] += 1

    async def silent(send_hello: bool) -> None:
        tally["attempts"] += 1
        kind = "hello" if send_hello else "websocket"
        async with websocket_to(target) as ws:
            started = trio.current_time()
            if send_hello:
                await ws.send_message(InitiatorHandshake(nacl.signing.SigningKey.generate())
                                      .start())
            try:
                while True:
                    await ws.get_message()  # the REPLY, then nothing until the victim closes
            finally:
                tally[f"held_ms.{kind}"] += int((trio.current_time() - started) * 1000)
                tally[f"closed.{kind}"] += 1

    attacks = [tcp_only, lambda: silent(False), lambda: silent(True)]
    async with trio.open_nursery() as nursery:
        for slot in range(kit.half_open):
            nursery.start_soon(keep_going, tally, attacks[slot % 3])


async def flood_bad_handshakes(kit: Kit, tally: Tally) -> None:
    """Low-order X25519 keys in well-signed handshakes, and bytes that are no handshake;
    and peer lists naming listeners that answer the victim's dial with a low-order key."""
    rng = random.Random(2)
    target = kit.target
    first_messages = bad_handshake_first_messages(rng)

    async def low_order() -> None:
        point = LOW_ORDER_POINTS[tally["attempts"] % len(LOW_ORDER_POINTS)]
        tally["attempts"] += 1
        tally["low-order"] += 1
        async with raw_link(target, ephemeral=point) as link:
            await link.ws.get_message()  # the victim must close it, not answer
            tally["low-order-answered"] += 1

    async def garbage() -> None:
        variant, data = next(first_messages)
        tally["attempts"] += 1
        tally[f"garbage.{variant}"] += 1
        async with websocket_to(target) as ws:
            await ws.send_message(data)
            await ws.get_message()
            await ws.get_message()

    async def bad_finish() -> None:
        tally["attempts"] += 1
        tally["garbage.finish"] += 1
        async with websocket_to(target) as ws:
            await ws.send_message(InitiatorHandshake(nacl.signing.SigningKey.generate()).start())
            await ws.get_message()
            await ws.send_message(b"\x03" + rng.randbytes(64))
            await ws.get_message()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_lure_into_low_order_dials, kit, tally)
        for slot in range(kit.connections * 4):
            nursery.start_soon(keep_going, tally, (low_order, garbage, bad_finish)[slot % 3])


async def _lure_into_low_order_dials(kit: Kit, tally: Tally, listeners: int = 8) -> None:
    """Listeners whose REPLY carries a low-order key, and a peer list naming them sent to
    the victim over a genuine link once a second: the victim dials and must survive."""

    async def answer_low_order(request: trio_websocket.WebSocketRequest) -> None:
        tally["victim-dials"] += 1
        ws = await request.accept()
        machine = ResponderHandshake(nacl.signing.SigningKey.generate())
        machine._greeting = attrs.evolve(machine._greeting, ephemeral=LOW_ORDER_POINTS[0])
        try:
            await ws.send_message(machine.receive_hello(_as_bytes(await ws.get_message())))
            await ws.get_message()
        except trio_websocket.ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        ports = []
        for _ in range(listeners):
            server = await nursery.start(trio_websocket.serve_websocket, answer_low_order,
                                         "127.0.0.1", 0, None)
            ports.append(server.port)

        async def lure() -> None:
            async with raw_link(kit.target) as link:
                nursery.start_soon(drain, link.ws, tally, "lure.received")
                while True:
                    entries = tuple(PeerEntry(fresh_identity().did, f"ws://127.0.0.1:{p}")
                                    for p in ports)
                    await link.send(encode(PeerList(entries)))
                    tally["lure.peer-lists"] += 1
                    await trio.sleep(1.0)

        await keep_going(tally, lure)


async def _rotating_links(kit: Kit, tally: Tally, frames: Callable[[], Iterator[bytes]],
                          *, rotate: int | None = None) -> None:
    """`kit.connections` links at once, each sending `rotate` frames from its own
    `frames()` and then replaced by a link with a fresh identity (fresh budgets)."""
    per_link = rotate or kit.rotate

    async def one_link() -> None:
        async with raw_link(kit.target) as link, trio.open_nursery() as nursery:
            nursery.start_soon(drain, link.ws, tally, "received")
            tally["links"] += 1
            source = frames()
            for _ in range(per_link):
                await link.send(next(source))
                tally["attempts"] += 1
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for _ in range(kit.connections):
            nursery.start_soon(keep_going, tally, one_link)


async def flood_refused(kit: Kit, tally: Tally) -> None:
    """Well-signed requests for a reply, each from a fresh key with no authority."""
    counter = iter(range(1 << 62))

    def frames() -> Iterator[bytes]:
        while True:
            yield encode(Unicast(refused_invocation(kit.target, next(counter))))

    await _rotating_links(kit, tally, frames)


async def flood_junk_revocations(kit: Kit, tally: Tally) -> None:
    """Valid revocations of random CIDs on /nunet/revocation from fresh keys, each link
    a fresh identity once it has spent its revocation budget."""
    heavy_issuer = fresh_identity()
    real = CID(kit.revocation_target) if kit.revocation_target else None
    counter = iter(range(1 << 62))

    def frames() -> Iterator[bytes]:
        while True:
            payload = junk_revocation(next(counter), heavy_issuer, real)
            yield publication(REVOCATION_TOPIC, payload)

    await _rotating_links(kit, tally, frames, rotate=400)


async def flood_replays(kit: Kit, tally: Tally) -> None:
    """One genuine, authorized request, sent once; then the same bytes again and again
    over fresh links, and re-wrapped without its proofs (its CID is the same)."""
    key = SigningKey.from_seed(kit.replay_seed)
    grant = Delegation.decode(kit.replay_grant)
    invocation = signed_request(key, kit.target, f"{ATTACK_PREFIX}/replay", {}, (grant,),
                                ttl=300)
    genuine, bare = encode_message(invocation, [grant]), encode_message(invocation)
    async with raw_link(kit.target) as link, trio.open_nursery() as nursery:
        nursery.start_soon(drain, link.ws, tally, "genuine.received")
        await link.send(encode(Unicast(genuine)))
        tally["genuine-sent"] += 1
        await trio.sleep(0.5)  # dispatched once before the replays begin

        def frames() -> Iterator[bytes]:
            while True:
                yield encode(Unicast(genuine))
                yield encode(Unicast(bare))

        await _rotating_links(kit, tally, frames, rotate=1000)


async def flood_heavy_policy(kit: Kit, tally: Tally) -> None:
    """A grant holder's re-delegation with a heavy policy, under requests whose args
    make every statement walk every item."""
    messages = [encode(Unicast(m)) for m in heavy_policy_invocations(kit, 8)]
    tally["message-bytes"] = len(messages[0])

    def frames() -> Iterator[bytes]:
        while True:
            yield from messages

    await _rotating_links(attrs.evolve(kit, connections=max(1, kit.connections // 4)),
                          tally, frames, rotate=100)


async def flood_oversized(kit: Kit, tally: Tally) -> None:
    """Messages past every size limit, before the handshake and after it; and frames of
    exactly the largest allowed size full of junk."""
    huge = os.urandom(16 * 1024 * 1024)
    target = kit.target

    async def before_handshake() -> None:
        size = (64 * 1024, len(huge))[tally["attempts"] % 2]
        tally["attempts"] += 1
        tally[f"pre-handshake.{size}"] += 1
        async with websocket_to(target) as ws:
            await ws.send_message(huge[:size])
            await ws.get_message()

    async def after_handshake() -> None:
        async with raw_link(target) as link:
            variant = tally["attempts"] % 3
            tally["attempts"] += 1
            if variant == 0:
                tally["post-handshake.raw-16MiB"] += 1
                await link.send_raw(huge)
            elif variant == 1:
                tally["post-handshake.sealed-over-max"] += 1
                await link.send(huge[:MAX_FRAME + 1])
            else:
                tally["post-handshake.max-junk"] += 1
                await link.send(encode(Unicast(huge[:MAX_FRAME - 1])))
            await link.ws.get_message()
            await link.ws.get_message()

    async with trio.open_nursery() as nursery:
        for slot in range(max(2, kit.connections // 2)):
            nursery.start_soon(keep_going, tally, (before_handshake, after_handshake)[slot % 2])


async def flood_malformed(kit: Kit, tally: Tally) -> None:
    """After a genuine handshake: sealed frames carrying what is not a mesh message, a
    container or a token, and now and then raw bytes that are not a sealed frame."""
    rng = random.Random(8)

    async def one_link() -> None:
        async with raw_link(kit.target) as link, trio.open_nursery() as nursery:
            nursery.start_soon(drain, link.ws, tally, "received")
            tally["links"] += 1
            for variant, payload in malformed_payloads(rng, kit.target):
                tally["attempts"] += 1
                tally[variant] += 1
                await link.send(payload)
                if rng.random() < 0.002:
                    tally["attempts"] += 1
                    tally["unsealed-junk"] += 1
                    await link.send_raw(rng.randbytes(200))  # ends this link
                    await trio.sleep_forever()  # until the victim closes it

    async with trio.open_nursery() as nursery:
        for _ in range(kit.connections):
            nursery.start_soon(keep_going, tally, one_link)


REVOCATIONS = "junk revocations, then a real one"
REPLAY = "replayed invocation"
FLOODS: dict[str, Flood] = {
    "half-open handshakes": flood_half_open,
    "low-order keys, garbage handshakes": flood_bad_handshakes,
    "refused invocations": flood_refused,
    REVOCATIONS: flood_junk_revocations,
    REPLAY: flood_replays,
    "heavy-policy re-delegation": flood_heavy_policy,
    "oversized frames": flood_oversized,
    "malformed frames": flood_malformed,
}
"""Every attack class, in the order of the table."""


# -- the attacker process --------------------------------------------------------------------


def run_attacker(conn: Connection, niceness: int = 0) -> None:
    """Attacker process: for each `(class name, kit)` received, send "started", flood
    until "stop" arrives, then send the tally. `None` ends the process. `niceness` is
    added to the process's nice value: an attacker stands for other machines, so on a
    shared one it can be made to take only the CPU the victim leaves."""
    os.nice(niceness)
    sign_tokens_fast()
    while True:
        order = conn.recv()
        if order is None:
            return
        name, kit = order
        conn.send(dict(trio.run(_flood_until_stopped, FLOODS[name], kit, conn)))


async def _flood_until_stopped(flood: Flood, kit: Kit, conn: Connection) -> Tally:
    tally: Tally = Counter()

    async def attack() -> None:
        try:
            await flood(kit, tally)
        except Exception as exc:  # an attacker bug is reported, not fatal
            tally[f"attacker-failed: {type(exc).__name__}: {exc}"] += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(attack)
        conn.send("started")
        await trio.to_thread.run_sync(conn.recv)  # "stop"
        nursery.cancel_scope.cancel()
    tally["flood_ms"] = int((time.perf_counter() - started) * 1000)
    return tally
