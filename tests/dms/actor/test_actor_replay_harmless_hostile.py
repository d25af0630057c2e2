"""Hostile review of replay-harmless declarations: a declaration belongs to the actor
that made it, not to its id. A lasting actor's id comes back when an actor of the same
inbox is spawned again in the same process; if the successor's role declares nothing,
a request to it that the full disk cannot record must be refused (StateUnavailable),
not taken unrecorded on its predecessor's word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.actor import ActorSystem, Message, Refuse, Role, behavior
from dms.actor._replay import ReplayLog
from ucan import TrustContext

from .test_actor_admission import NOW, OWNER, direct_grant, request
from .test_actor_replay_log_full_disk import FillingDisk, Shop


class Orders(Role):
    """The successor: its `/shop/status` places an order too (not replay-harmless)."""

    @behavior("/shop/status")
    async def status(self, message: Message[Any]) -> None: ...


@attrs.define
class Nowhere:
    peer_id: str = "nowhere"

    async def send(self, peer: str, data: bytes) -> None:
        pass

    async def publish(self, topic: str, data: bytes) -> None:
        pass

    def subscribe(self, topic: str) -> None:
        pass


def test_a_stopped_actors_replay_harmless_declaration_does_not_pass_to_its_successor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FillingDisk(monkeypatch)
    log = ReplayLog(tmp_path / "replays", now=NOW)
    system = ActorSystem(OWNER, Nowhere(), TrustContext(OWNER.did), clock=lambda: NOW,
                         replays=log)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(system.run)
            first = await system.root.spawn("shop", commands=[], lasting=True)
            first.register(Shop())
            system.admission.declare_replay_harmless(first.id, Shop())
            await first.stop()
            successor = await system.root.spawn("shop", commands=[], lasting=True)
            assert successor.id == first.id
            successor.register(Orders())  # and declares nothing
            disk.fill()
            verdict = system.admission.admit(
                request(direct_grant(), command="/shop/status", audience=successor.id),
                now=NOW)
            assert isinstance(verdict, Refuse), verdict
            assert verdict.error.name == "StateUnavailable"
            nursery.cancel_scope.cancel()

    trio.run(main)
    disk.free()
    log.close()
