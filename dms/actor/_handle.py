"""Handles: how an actor is named on the wire."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Handle:
    """An actor's address: its own key (`id`), the principal behind it (`did`, the
    node's persistent key), the node's transport identity (`peer`) and its inbox."""

    id: str
    did: str
    peer: str
    inbox: str = "root"

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "did": self.did, "peer": self.peer, "inbox": self.inbox}

    @classmethod
    def from_wire(cls, value: Any) -> Handle:
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str) for k in ("id", "did", "peer", "inbox")
        ):
            raise ValueError(f"not an actor handle: {value!r}")
        return cls(value["id"], value["did"], value["peer"], value["inbox"])
