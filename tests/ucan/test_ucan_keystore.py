"""Keystore files: encrypted seeds, clear DIDs, 0600, named failures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ucan.keys import SigningKey
from ucan.keystore import (
    FAST_INSECURE,
    CorruptKeyFile,
    InvalidKeyName,
    KeyExists,
    KeyNotFound,
    Keystore,
    PassphraseUnavailable,
    WrongPassphrase,
    keystore_directory,
    resolve_passphrase,
)


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", limits=FAST_INSECURE)


def test_a_created_key_reopens_with_its_passphrase_only(keystore: Keystore) -> None:
    entry = keystore.create("alice", "correct horse")
    assert keystore.load("alice", "correct horse").did == entry.did
    with pytest.raises(WrongPassphrase, match="'alice'"):
        keystore.load("alice", "battery staple")


def test_key_files_are_private_and_hold_no_clear_seed(keystore: Keystore) -> None:
    key = SigningKey.generate()
    entry = keystore.create("bob", "pw", key=key)
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keystore.directory.stat().st_mode) == 0o700
    text = entry.path.read_text()
    assert key.did in text and key.seed.hex() not in text


def test_listing_and_did_need_no_passphrase(keystore: Keystore) -> None:
    dids = {name: keystore.create(name, "pw").did for name in ("b", "a")}
    assert [(e.name, e.did) for e in keystore.list()] == sorted(dids.items())
    assert keystore.did("a") == dids["a"]


def test_an_absent_directory_lists_nothing(tmp_path: Path) -> None:
    assert Keystore(tmp_path / "none").list() == []


def test_names_are_checked_and_never_overwritten(keystore: Keystore) -> None:
    keystore.create("k", "pw")
    with pytest.raises(KeyExists):
        keystore.create("k", "pw")
    for bad in ("../k", ".hidden", "", "a/b", "x" * 65):
        with pytest.raises(InvalidKeyName):
            keystore.path_of(bad)
    with pytest.raises(KeyNotFound, match="'nobody'"):
        keystore.did("nobody")


def test_an_edited_did_is_detected_on_load(keystore: Keystore) -> None:
    entry = keystore.create("k", "pw")
    record = json.loads(entry.path.read_text())
    record["did"] = SigningKey.generate().did
    entry.path.write_text(json.dumps(record))
    with pytest.raises(CorruptKeyFile, match="not the key's own did"):
        keystore.load("k", "pw")
    entry.path.write_text("{}")
    with pytest.raises(CorruptKeyFile):
        keystore.did("k")


def test_empty_passphrase_is_refused(keystore: Keystore) -> None:
    with pytest.raises(PassphraseUnavailable):
        keystore.create("k", "")


def test_directory_comes_from_option_then_env_then_default() -> None:
    assert keystore_directory("/x", env={"UCAN_KEYSTORE": "/y"}) == Path("/x")
    assert keystore_directory(None, env={"UCAN_KEYSTORE": "/y"}) == Path("/y")
    assert keystore_directory(None, env={}) == Path("~/.config/ucan/keys").expanduser()


def test_passphrase_comes_from_env_then_prompt_else_a_named_error() -> None:
    assert resolve_passphrase("k", env={"UCAN_PASSPHRASE": "e"}, interactive=False) == "e"
    answers = iter(["p", "p"])
    assert resolve_passphrase("k", confirm=True, env={}, interactive=True,
                              prompt=lambda _: next(answers)) == "p"
    answers = iter(["p", "q"])
    with pytest.raises(PassphraseUnavailable, match="differ"):
        resolve_passphrase("k", confirm=True, env={}, interactive=True,
                           prompt=lambda _: next(answers))
    with pytest.raises(PassphraseUnavailable, match="UCAN_PASSPHRASE"):
        resolve_passphrase("k", env={}, interactive=False)
