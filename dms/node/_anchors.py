"""The anchors a node keeps in its state directory: the roots of authority it accepts
besides its own DID, across restarts (`dms cap anchor add|remove|list`).

    STATE_DIR/anchors.json      ["did:key:z...", ...]

`open_node(state_dir=...)` accepts these as well as its `anchors=` (the `--anchor`
flags): read when the node starts, and again when the file changes while it runs
(`dms.node._state_watch`). Writes are atomic, so a node reads the old list or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ucan import MalformedToken, public_key_from_did

ANCHORS_FILE = "anchors.json"
MAX_ANCHORS_BYTES = 1 << 20


class InvalidAnchors(ValueError):
    """An anchors file that cannot be read, or a DID that is not an anchor (the message
    names the file or the DID)."""


def check_anchor(did: str) -> str:
    try:
        public_key_from_did(did)
    except (MalformedToken, ValueError, TypeError):
        raise InvalidAnchors(f"{did!r} is not the did:key of an Ed25519 key") from None
    return did


def anchors_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / ANCHORS_FILE


def read_anchors(state_dir: str | os.PathLike[str]) -> tuple[str, ...]:
    """The kept anchors (none when there is no file)."""
    path = anchors_path(state_dir)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_ANCHORS_BYTES + 1)
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise InvalidAnchors(f"{path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidAnchors(f"{path}: not JSON: {exc}") from None
    if len(data) > MAX_ANCHORS_BYTES or not isinstance(raw, list):
        raise InvalidAnchors(f"{path}: expected a JSON list of DIDs")
    for index, did in enumerate(raw):
        if not isinstance(did, str):
            raise InvalidAnchors(f"{path}: [{index}]: expected a DID, got {type(did).__name__}")
        try:
            check_anchor(did)
        except InvalidAnchors as exc:
            raise InvalidAnchors(f"{path}: [{index}]: {exc}") from None
    return tuple(raw)


def write_anchors(state_dir: str | os.PathLike[str], anchors: tuple[str, ...]) -> None:
    path = anchors_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        json.dump(list(anchors), file, indent=2)
        file.write("\n")
    os.replace(partial, path)
