"""How deployments look on a terminal and in a log: one plain line per event, rich
tables for status, and the live view `dms deploy --wait` redraws in a terminal.

Peers are shown by the name the client config gives them (`provider1` on `dms dev`),
else by the end of their DID, which is what tells did:keys apart at a glance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dms.deployment import DeploymentView, EventView

from ._watch import Watch

DID_TAIL = 8
OUTPUT_LINES = 3
RECENT_LINES = 6


class Names:
    """What to call a DID."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)

    def __call__(self, did: str) -> str:
        known = self.names.get(did)
        if known is not None:
            return known
        return f"…{did[-DID_TAIL:]}" if did.startswith("did:key:") else did


def event_line(event: EventView, name: Names) -> str:
    """One event as one line (a task's output follows on lines of its own)."""
    payload = event.payload
    clock = time.strftime("%H:%M:%S", time.localtime(event.at))
    match event.kind:
        case "phase":
            text = f"phase {payload.get('phase')}"
            if payload.get("detail"):
                text += f": {_first_line(payload['detail'])}"
        case "allocation":
            text = (f"{payload.get('allocation')} on {name(str(payload.get('provider', '')))}: "
                    f"{payload.get('event')}")
            if payload.get("detail"):
                text += f" ({payload['detail']})"
            tail = _tail(payload.get("logs_tail"))
            if tail and payload.get("event") in ("completed", "exited"):
                text += "".join(f"\n  | {line}" for line in tail)
        case "committed":
            nodes = ", ".join(str(n) for n in payload.get("nodes", ()))
            text = f"committed {nodes} on {name(str(payload.get('provider', '')))}"
        case "unplaceable":
            text = f"not placeable yet: {_first_line(payload.get('explanation', ''))}"
        case "step" | "revert":
            text = f"{event.kind}: {_first_line(payload.get('detail', payload.get('step')))}"
        case _:
            text = f"{event.kind}: " + ", ".join(
                f"{key}={_short(value, name)}" for key, value in sorted(payload.items()))
    return f"{clock} {text}"


def _short(value: Any, name: Names) -> str:
    if isinstance(value, str):
        return _first_line(name(value) if value.startswith("did:key:") else value)
    return str(value)


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:300] if lines else ""


def _tail(text: Any) -> list[str]:
    return str(text or "").rstrip().splitlines()[-OUTPUT_LINES:]


def status_table(view: DeploymentView, outputs: Mapping[str, str], name: Names,
                 note: Text | None = None) -> Group:
    """One deployment: its phase (and `note`), where its nodes went, each allocation."""
    head = Text.assemble(("deployment ", "bold"), (view.id, "bold cyan"), "  ",
                         (view.phase, _phase_style(view.phase)), note or "")
    parts: list[RenderableType] = [head]
    if view.assignment:
        placed = ", ".join(f"{node} → {name(peer)}"
                           for node, peer in sorted(view.assignment.items()))
        parts.append(Text(f"placement: {placed}"))
    if view.failure:
        parts.append(Text(f"failure: {view.failure}", style="red"))
    if view.allocations:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("allocation", "provider", "state", "health", "restarts", "output"):
            table.add_column(column)
        for allocation in view.allocations:
            table.add_row(allocation.name, name(allocation.provider),
                          Text(allocation.state, _state_style(allocation.state)),
                          allocation.health or "", str(allocation.restarts),
                          "\n".join(_tail(outputs.get(allocation.name))))
        parts.append(table)
    return Group(*parts)


def deployments_table(views: Sequence[DeploymentView]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=36)  # a uuid, whole: it is copied
    for column in ("phase", "created", "allocations"):
        table.add_column(column)
    for view in views:
        states: dict[str, int] = {}
        for allocation in view.allocations:
            states[allocation.state] = states.get(allocation.state, 0) + 1
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        table.add_row(view.id, Text(view.phase, _phase_style(view.phase)),
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(view.created_at)),
                      summary)
    return table


class LiveView:
    """What `dms deploy --wait` redraws: the phase and time so far, every allocation,
    and the latest events. Rendered from `watch` each time rich refreshes."""

    def __init__(self, deployment: str, watch: Watch, name: Names,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.deployment = deployment
        self.watch = watch
        self.name = name
        self.clock = clock
        self.started = clock()
        self.recent: list[str] = []

    def add(self, event: EventView) -> None:
        self.recent = [*self.recent, *event_line(event, self.name).splitlines()][-RECENT_LINES:]

    def __rich__(self) -> RenderableType:
        view = self.watch.view
        elapsed = Text(f"  {self.clock() - self.started:.0f} s", style="dim")
        parts: list[RenderableType] = [
            Text.assemble(("deployment ", "bold"), (self.deployment, "bold cyan"), elapsed)
            if view is None else status_table(view, self.watch.outputs, self.name, elapsed)]
        parts.extend(Text(line, style="dim") for line in self.recent)
        return Group(*parts)


def _phase_style(phase: str) -> str:
    return {"running": "green", "completed": "green", "failed": "bold red",
            "shutting_down": "yellow"}.get(phase, "yellow")


def _state_style(state: str) -> str:
    return {"healthy": "green", "running": "green", "completed": "green",
            "failed": "bold red", "unhealthy": "red", "restarting": "yellow"}.get(state, "")
