"""What the node (and whatever a workload printed) sends is shown, never obeyed and
never a crash: no control character reaches the terminal, no markup is read."""

from __future__ import annotations

import io
import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from dms.cli._display import LiveView, Names, event_line, printable, status_table
from dms.cli._watch import Goal, Watch
from dms.deployment import AllocationView, DeploymentView, EventView

remote_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["\x1b[2J\x1b[H", "[bold red]", "[/]", "\x1b]0;owned\x07", "\u202eevil", "did:key:zX"])
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | remote_text,
                      lambda inner: st.lists(inner, max_size=3), max_leaves=8)
payloads = st.dictionaries(st.sampled_from(["allocation", "provider", "event", "detail",
                                            "logs_tail", "phase", "nodes", "explanation",
                                            "step", "subnet", "none", "renumbered_from"])
                                            | remote_text, values, max_size=6)


def shown(text: str) -> bool:
    """No control or format character but newline and tab."""
    return all(c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf") for c in text)


def render(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(renderable)
    return out.getvalue()


@settings(max_examples=100)
@given(st.sampled_from(["phase", "allocation", "committed", "unplaceable", "step",
                        "provider_lost", "network"]) | remote_text,
       payloads, st.floats(allow_nan=True))
def test_any_event_becomes_printable_lines(kind: str, payload: dict[str, Any],
                                           at: float) -> None:
    line = event_line(EventView(1, at, kind, payload), Names({}))
    assert shown(line)


@settings(max_examples=50)
@given(remote_text, remote_text, remote_text, st.floats(allow_nan=True))
def test_any_status_renders_and_markup_in_it_is_text(name: str, state: str, output: str,
                                                     created: float) -> None:
    view = DeploymentView(id=name, phase=state, owner="o", created_at=created,
                          assignment={name: "did:key:zProvider"},
                          allocations=(AllocationView(name, name, state, state),),
                          failure=output, recent_events=())
    text = render(status_table(view, {name: output}, Names({})))
    assert shown(text)
    if "[bold red]" in output:  # not read as markup: printed as it was
        assert "[bold red]" in text


def test_escapes_are_shown_not_sent() -> None:
    assert printable("a\x1b[2Jb\u202ec\n\td") == "a\\x1b[2Jb\\u202ec\n\td"


def test_the_live_view_names_providers_and_shows_task_output() -> None:
    watch = Watch(Goal.ENDED)
    watch.take([EventView(1, 0.0, "allocation", {"allocation": "job", "event": "completed",
                                                 "provider": "did:key:zP",
                                                 "logs_tail": "hello\n"})])
    watch.judge(DeploymentView(id="d1", phase="running", owner="o", created_at=0.0,
                               assignment={"n": "did:key:zP"},
                               allocations=(AllocationView("job", "did:key:zP", "completed"),),
                               failure="", recent_events=()))
    live = LiveView("d1", watch, Names({"did:key:zP": "provider1"}), clock=lambda: 0.0)
    text = render(live)
    assert "n → provider1" in text and "completed" in text and "hello" in text


WHY = ("cannot place the ensemble: no suitable providers for web\n"
       "  node web: 2 bids; 2 lack executor docker; 0 candidates\n"
       "declines:\n"
       "  provider did:key:zP: node web: executor docker not available here (have: process)\n"
       "bids requested once")


def test_an_unplaceable_event_line_carries_the_declines() -> None:
    line = event_line(EventView(3, 0.0, "unplaceable", {"explanation": WHY}), Names({}))
    assert line.splitlines()[0].endswith("not placeable yet: no suitable providers for web")
    assert "  | provider did:key:zP: node web: executor docker not available here" in line


def test_the_live_view_shows_why_it_is_not_placed_until_it_is() -> None:
    watch = Watch(Goal.ENDED)
    live = LiveView("d1", watch, Names({}), clock=lambda: 0.0)
    live.add(EventView(3, 0.0, "unplaceable", {"explanation": WHY}))
    live.add(EventView(4, 0.0, "phase", {"phase": "bidding"}))
    text = render(live)
    assert text.count("executor docker not available here") == 1  # shown once
    assert "not placeable yet: no suitable providers for web" in text
    live.add(EventView(5, 0.0, "phase", {"phase": "committing"}))
    assert "not available here" not in render(live)  # placed: the reason is gone


PROVIDER = "did:key:z6MkmA8EC3tSWP9hD3SeAeeR2827B7p3Fmu3W4nb2F6hsMWY"


def test_the_network_event_says_the_subnet_or_why_none_with_providers_by_name() -> None:
    names = Names({PROVIDER: "provider3"})
    planned = event_line(EventView(1, 0.0, "network", {"subnet": "10.1.2.0/24"}), names)
    assert planned.endswith(" network: 10.1.2.0/24")
    moved = event_line(EventView(2, 0.0, "network", {
        "subnet": "10.1.3.0/24", "renumbered_from": "10.1.2.0/24"}), names)
    assert moved.endswith(" network: 10.1.3.0/24 (renumbered from 10.1.2.0/24)")
    none = event_line(EventView(3, 0.0, "network", {
        "none": f"provider {PROVIDER} offers no network"}), names)
    # before: "network: none=provider did:key:z6Mk... offers no network"
    assert none.endswith(" network: none (provider provider3 offers no network)")


def test_the_status_names_a_provider_that_offers_no_network() -> None:
    view = DeploymentView(id="d", phase="running", owner="o", created_at=0.0,
                          assignment={"web": PROVIDER}, allocations=(), failure=None,
                          recent_events=(),
                          network=f"none (provider {PROVIDER} offers no network)")
    text = render(status_table(view, {}, Names({PROVIDER: "provider3"})))
    assert "network: none (provider provider3 offers no network)" in text
    assert PROVIDER not in text
