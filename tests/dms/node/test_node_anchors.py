"""Anchors kept in a node's state directory (`dms cap anchor`): accepted at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from dms.net import MemoryNetwork
from dms.node import open_node
from dms.node._anchors import InvalidAnchors, anchors_path, read_anchors, write_anchors
from ucan import SigningKey

ORG = SigningKey.generate().did


def test_no_file_is_no_anchors(tmp_path: Path) -> None:
    assert read_anchors(tmp_path) == ()


def test_anchors_written_are_read_back(tmp_path: Path) -> None:
    write_anchors(tmp_path, (ORG,))
    assert read_anchors(tmp_path) == (ORG,)


@pytest.mark.parametrize(("text", "named"), [
    ("{", "not JSON"),
    ('{"a": 1}', "expected a JSON list"),
    ("[1]", "[0]: expected a DID"),
    ('["did:key:nope"]', "[0]: 'did:key:nope' is not the did:key"),
])
def test_a_bad_anchors_file_is_refused_naming_it(tmp_path: Path, text: str, named: str) -> None:
    anchors_path(tmp_path).write_text(text)
    with pytest.raises(InvalidAnchors) as refused:
        read_anchors(tmp_path)
    assert str(refused.value).startswith(str(anchors_path(tmp_path)))
    assert named in str(refused.value)


async def test_a_node_accepts_the_anchors_kept_in_its_state_directory(tmp_path: Path) -> None:
    other = SigningKey.generate().did
    write_anchors(tmp_path / "state", (ORG,))
    async with open_node(network=MemoryNetwork(), state_dir=tmp_path / "state",
                         anchors=[other]) as node:
        assert node.trust.anchors >= {ORG, other}

