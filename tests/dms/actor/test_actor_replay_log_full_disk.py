"""The replay log on a disk that fills up: an id whose line cannot be written whole is
not remembered, the torn part is cut off (so the next line is not joined to it and read
back as junk), and admission refuses that request `StateUnavailable` rather than run
it unrecorded: a restart could otherwise run it twice. Replies are taken all the same
(after a restart no request waits for a replayed one), and so are requests for a
behavior its actor declared replay-harmless, remembered in memory only: a copy is still
dropped in this process. The write is made to fail by hand: half a line written, then
ENOSPC."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from dms.actor import (
    REPLY,
    Accept,
    Admission,
    Drop,
    Message,
    Refuse,
    ReplyIn,
    Role,
    _replay,
    behavior,
    encode_message,
)
from dms.actor._replay import ReplayLog, ReplayNotKept
from dms.actor._wire import decode_message
from ucan import CID, TrustContext, invoke

from .test_actor_admission import CALLER, ELSEWHERE, MIDDLE, NOW, OWNER, direct_grant, request


class FillingDisk:
    """`os.write` that writes half of the first line it is given, then ENOSPC, until
    `free` is called."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self._write = os.write
        monkeypatch.setattr(_replay.os, "write", self)

    def fill(self) -> None:
        self.full, self._torn = True, False

    def free(self) -> None:
        self.full = False

    def __call__(self, fd: int, data: Any) -> int:
        if not self.full:
            return self._write(fd, data)
        if not self._torn:
            self._torn = True
            return self._write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _cid(n: int) -> CID:
    return CID.for_bytes(b"message %d" % n)


def test_an_id_the_full_disk_cannot_hold_is_not_remembered_and_leaves_no_torn_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "replays"
    disk = FillingDisk(monkeypatch)
    log = ReplayLog(path, now=1000.0)
    log.remember(_cid(0), 2000.0, 1000.0)
    disk.fill()
    with pytest.raises(ReplayNotKept) as refused:
        log.remember(_cid(1), 2000.0, 1000.0)
    assert f"{path}: No space left on device" in str(refused.value)
    assert refused.value.name == "StateUnavailable"
    assert not log.seen(_cid(1))
    assert len(path.read_bytes().splitlines()) == 1  # the half line is gone
    disk.free()
    log.remember(_cid(2), 2000.0, 1000.0)
    log.close()
    again = ReplayLog(path, now=1500.0)
    assert again.seen(_cid(0)) and again.seen(_cid(2)) and not again.seen(_cid(1))
    again.close()


def test_admission_refuses_a_request_it_cannot_record_and_takes_replies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FillingDisk(monkeypatch)
    log = ReplayLog(tmp_path / "replays", now=NOW)
    admission = Admission(TrustContext(OWNER.did), lambda did: did == OWNER.did, replays=log)
    disk.fill()
    verdict = admission.admit(request(direct_grant()), now=NOW)
    assert isinstance(verdict, Refuse)
    assert verdict.error.name == "StateUnavailable"
    assert admission.metrics["refused.StateUnavailable"] == 1
    assert "accepted" not in admission.metrics
    reply = invoke(CALLER, CALLER.did, REPLY, {"ran": direct_grant()[0].cid, "out": {"ok": 1}},
                   audience=OWNER.did, expiration=NOW + 30)
    assert isinstance(admission.admit(encode_message(reply), now=NOW), ReplyIn)
    disk.free()
    frame = request(direct_grant(), args={"again": True})
    assert isinstance(admission.admit(frame, now=NOW), Accept)
    log.close()


class Shop(Role):
    """A status read declared replay-harmless next to an order that is not."""

    @behavior("/shop/status", replay_harmless=True)
    async def status(self, message: Message[Any]) -> None: ...

    @behavior("/shop/order")
    async def order(self, message: Message[Any]) -> None: ...


def test_a_replay_harmless_request_is_taken_unrecorded_and_a_copy_of_it_still_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FillingDisk(monkeypatch)
    path = tmp_path / "replays"
    log = ReplayLog(path, now=NOW)
    admission = Admission(TrustContext(OWNER.did), lambda did: did == OWNER.did, replays=log)
    admission.declare_replay_harmless(OWNER.did, Shop())
    disk.fill()
    poll = request(direct_grant(), command="/shop/status")
    assert isinstance(admission.admit(poll, now=NOW), Accept)
    assert admission.metrics["accepted.unrecorded"] == 1
    assert admission.admit(poll, now=NOW + 1) == Drop("replayed")  # in this process
    for command in ("/shop/order", "/shop/status/deep"):  # the latter: not its exact command
        verdict = admission.admit(request(direct_grant(), command=command), now=NOW)
        assert isinstance(verdict, Refuse), command
        assert verdict.error.name == "StateUnavailable" and "No space left" in str(verdict.error)
    assert admission.metrics["accepted"] == 1
    disk.free()
    log.close()
    again = ReplayLog(path, now=NOW)  # as after a restart: it was kept in memory only
    assert not again.seen(decode_message(poll, TrustContext(OWNER.did)).invocation.cid)
    again.close()


def test_replay_harmless_declarations_hold_only_for_local_actors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FillingDisk(monkeypatch)
    local = {OWNER.did}
    log = ReplayLog(tmp_path / "replays", now=NOW)
    admission = Admission(TrustContext(OWNER.did), local.__contains__, replays=log)
    admission.declare_replay_harmless(OWNER.did, Shop())
    local.clear()  # the actor stopped; another declaration prunes it
    admission.declare_replay_harmless(CALLER.did, Shop())  # not local: not declared
    local.add(OWNER.did)  # an actor of the same id again, which declared nothing
    disk.fill()
    verdict = admission.admit(request(direct_grant(), command="/shop/status"), now=NOW)
    assert isinstance(verdict, Refuse) and verdict.error.name == "StateUnavailable"
    log.close()


def test_an_unrecorded_poll_replayed_after_a_restart_finds_its_actor_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The argument's first leg: the actor a replay-harmless poll was addressed to had
    an ephemeral key; after the restart its successor has another, so the poll, whose
    id the restart forgot, names no actor here and is refused before any chain work."""
    disk = FillingDisk(monkeypatch)
    path = tmp_path / "replays"
    before = {OWNER.did, MIDDLE.did}  # MIDDLE: the allocation actor before the restart
    log = ReplayLog(path, now=NOW)
    admission = Admission(TrustContext(OWNER.did), before.__contains__, replays=log)
    admission.declare_replay_harmless(MIDDLE.did, Shop())
    disk.fill()
    poll = request(direct_grant(), command="/shop/status", audience=MIDDLE.did)
    assert isinstance(admission.admit(poll, now=NOW), Accept)
    log.close()
    disk.free()
    after = {OWNER.did, ELSEWHERE.did}  # the successor, with a fresh key
    again = ReplayLog(path, now=NOW + 1)
    restarted = Admission(TrustContext(OWNER.did), after.__contains__, replays=again)
    restarted.declare_replay_harmless(ELSEWHERE.did, Shop())
    verdict = restarted.admit(poll, now=NOW + 1)
    assert isinstance(verdict, Refuse) and verdict.error.name == "InvalidAudience"
    again.close()


def test_a_torn_line_that_cannot_be_cut_off_does_not_swallow_the_next_recorded_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile review: when the cut itself fails too (EIO, a read-only remount), the
    half line stays; the next id written must not be joined to it and so forgotten by
    a restart (a replay of that message would then run twice)."""
    path = tmp_path / "replays"
    disk = FillingDisk(monkeypatch)

    def cannot_cut(fd: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    log = ReplayLog(path, now=1000.0)
    disk.fill()
    monkeypatch.setattr(_replay.os, "ftruncate", cannot_cut)
    with pytest.raises(ReplayNotKept):
        log.remember(_cid(1), 2000.0, 1000.0)
    disk.free()
    log.remember(_cid(2), 2000.0, 1000.0)
    log.close()
    again = ReplayLog(path, now=1500.0)
    assert again.seen(_cid(2)) and not again.seen(_cid(1))
    again.close()


def test_a_reply_taken_unrecorded_on_a_full_disk_is_still_dropped_when_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile review: a reply the full disk cannot record is taken, but its id is
    remembered in memory, so a peer replaying it in this process gets it dropped at the
    replay check instead of through the router each time."""
    disk = FillingDisk(monkeypatch)
    log = ReplayLog(tmp_path / "replays", now=NOW)
    admission = Admission(TrustContext(OWNER.did), lambda did: did == OWNER.did, replays=log)
    disk.fill()
    reply = invoke(CALLER, CALLER.did, REPLY, {"ran": direct_grant()[0].cid, "out": {"ok": 1}},
                   audience=OWNER.did, expiration=NOW + 30)
    frame = encode_message(reply)
    assert isinstance(admission.admit(frame, now=NOW), ReplyIn)
    assert admission.admit(frame, now=NOW + 1) == Drop("replayed")
    disk.free()
    log.close()
