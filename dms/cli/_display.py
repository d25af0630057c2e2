"""How deployments look on a terminal and in a log: one plain line per event, rich
tables for status, and the live view `dms deploy --wait` redraws in a terminal.

Peers are shown by the name the client config gives them (`provider1` on `dms dev`),
else by the end of their DID, which is what tells did:keys apart at a glance.

Everything shown comes from the node, and a workload's output from whatever it ran:
control characters are shown escaped (a task cannot move the cursor or retitle the
terminal), rich markup is never read from it, and a nonsense value (a time out of
range, a list where a name was expected) is shown as it is, never a crash.
"""

from __future__ import annotations

import re
import time
import unicodedata
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
WHY_LINES = 12
DID_IN_TEXT = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]{1,100}")


class Names:
    """What to call a DID."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)

    def __call__(self, did: str) -> str:
        known = self.names.get(did)
        if known is not None:
            return known
        return f"…{did[-DID_TAIL:]}" if did.startswith("did:key:") else did


def printable(text: str) -> str:
    """`text` with control and format characters escaped (newlines and tabs kept)."""
    return "".join(c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf")
                   else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in text)


def when(at: float, pattern: str = "%H:%M:%S") -> str:
    try:
        return time.strftime(pattern, time.localtime(at))
    except (OverflowError, OSError, ValueError):
        return f"@{at!r}"


def event_line(event: EventView, name: Names) -> str:
    """One event as one line (a task's output follows on lines of its own)."""
    return printable(f"{when(event.at)} {_event_text(event, name)}")


def _event_text(event: EventView, name: Names) -> str:
    payload = event.payload
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
            listed = payload.get("nodes", ())
            nodes = ", ".join(map(str, listed if isinstance(listed, list | tuple) else [listed]))
            text = f"committed {nodes} on {name(str(payload.get('provider', '')))}"
        case "unplaceable":  # recorded once per distinct answer: all of it, declines too
            lines = unplaceable_lines(payload.get("explanation", ""))
            text = f"not placeable yet: {lines[0] if lines else ''}"
            text += "".join(f"\n  | {line}" for line in lines[1:])
        case "network":  # the subnet planned, or why the deployment gets none
            if "subnet" in payload:
                text = f"network: {payload['subnet']}"
                if payload.get("renumbered_from"):
                    text += f" (renumbered from {payload['renumbered_from']})"
            else:
                text = f"network: none ({named_dids(_first_line(payload.get('none')), name)})"
        case "step" | "revert":
            text = f"{event.kind}: {_first_line(payload.get('detail', payload.get('step')))}"
        case _:
            text = f"{event.kind}: " + ", ".join(
                f"{key}={_short(value, name)}"
                for key, value in sorted(payload.items(), key=lambda item: str(item[0])))
    return text


def unplaceable_lines(explanation: Any) -> list[str]:
    """An unplaceable explanation's lines (the solver's, then the declines), at most
    `WHY_LINES`, the last saying how many more there were."""
    lines = [line.strip()[:300] for line in str(explanation).strip().splitlines()
             if line.strip()]
    if lines and lines[0].startswith("cannot place the ensemble: "):
        lines[0] = lines[0][len("cannot place the ensemble: "):]
    if len(lines) > WHY_LINES:
        lines = [*lines[:WHY_LINES - 1], f"(and {len(lines) - WHY_LINES + 1} more lines)"]
    return lines


def named_dids(text: str, name: Names) -> str:
    """`text` with each did:key in it as `name` shows it (a dev network's `provider1`)."""
    return DID_IN_TEXT.sub(lambda found: name(found.group(0)), text)


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
    head = Text.assemble(("deployment ", "bold"), (printable(view.id), "bold cyan"), "  ",
                         (printable(view.phase), _phase_style(view.phase)), note or "")
    parts: list[RenderableType] = [head]
    if view.assignment:
        placed = ", ".join(f"{node} → {name(peer)}"
                           for node, peer in sorted(view.assignment.items()))
        parts.append(Text(printable(f"placement: {placed}")))
    if view.assignment:
        parts.append(Text(printable(f"network: {named_dids(view.network, name)}")))
    if view.failure:
        parts.append(Text(printable(f"failure: {view.failure}"), style="red"))
    if view.allocations:
        table = Table(box=None, pad_edge=False, header_style="bold")
        networked = any(allocation.address for allocation in view.allocations)
        for column in ("allocation", *(("address",) if networked else ()), "provider",
                       "state", "health", "restarts", "output"):
            table.add_column(column)
        for allocation in view.allocations:
            address = (Text(printable(f"{allocation.address} {allocation.dns_name}")),)
            table.add_row(Text(printable(allocation.name)), *(address if networked else ()),
                          Text(printable(name(allocation.provider))),
                          Text(printable(allocation.state), _state_style(allocation.state)),
                          Text(printable(allocation.health or "")), str(allocation.restarts),
                          Text(printable("\n".join(_tail(outputs.get(allocation.name))))))
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
        table.add_row(Text(printable(view.id)),
                      Text(printable(view.phase), _phase_style(view.phase)),
                      when(view.created_at, "%Y-%m-%d %H:%M:%S"), Text(printable(summary)))
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
        self.why: list[str] = []  # why it is not placed yet, until it is

    def add(self, event: EventView) -> None:
        lines = event_line(event, self.name).splitlines()
        if event.kind == "unplaceable":
            self.why = unplaceable_lines(event.payload.get("explanation", ""))
            lines = lines[:1]  # the rest stays shown as `why`, once
        elif event.kind == "phase" and event.payload.get("phase") not in ("bidding",
                                                                           "solving"):
            self.why = []
        self.recent = [*self.recent, *lines][-RECENT_LINES:]

    def __rich__(self) -> RenderableType:
        view = self.watch.view
        elapsed = Text(f"  {self.clock() - self.started:.0f} s", style="dim")
        parts: list[RenderableType] = [
            Text.assemble(("deployment ", "bold"), (printable(self.deployment), "bold cyan"),
                          elapsed)
            if view is None else status_table(view, self.watch.outputs, self.name, elapsed)]
        if self.why:
            parts.append(Text(printable(f"not placeable yet: {self.why[0]}"), style="yellow"))
            parts.extend(Text(printable(f"  {line}"), style="yellow") for line in self.why[1:])
        parts.extend(Text(line, style="dim") for line in self.recent)
        return Group(*parts)


def _phase_style(phase: str) -> str:
    return {"running": "green", "completed": "green", "failed": "bold red",
            "shutting_down": "yellow"}.get(phase, "yellow")


def _state_style(state: str) -> str:
    return {"healthy": "green", "running": "green", "completed": "green",
            "failed": "bold red", "unhealthy": "red", "restarting": "yellow"}.get(state, "")
