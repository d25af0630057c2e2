"""Listing a keystore around damaged key files, and naming the directory a key cannot
be written to."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucan.keystore import FAST_INSECURE, CorruptKeyFile, Keystore, KeystoreError


def test_a_corrupt_key_file_is_reported_beside_the_readable_keys(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, limits=FAST_INSECURE)
    good = keystore.create("good", "pw")
    (tmp_path / "bad.key").write_text("{")
    listing = keystore.survey()
    assert listing.keys == (good,)
    [failure] = listing.unreadable
    assert isinstance(failure, CorruptKeyFile) and str(tmp_path / "bad.key") in failure.message
    with pytest.raises(CorruptKeyFile):
        keystore.list()


def test_a_keystore_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(KeystoreError, match=f"keystore {tmp_path / 'file'} is not a directory"):
        Keystore(tmp_path / "file", limits=FAST_INSECURE).create("k", "pw")


def test_an_unwritable_keystore_is_named(tmp_path: Path) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc filesystem to refuse a key file")
    with pytest.raises(KeystoreError, match="cannot write key 'foo' in keystore /proc"):
        Keystore("/proc", limits=FAST_INSECURE).create("foo", "pw")
