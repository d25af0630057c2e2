"""`dms deploy`, `dms status`, `dms list`, `dms events`, `dms shutdown`, `dms join`,
`dms leave`: a user's view of the deployments on one node, each a client of that
node's deployment service.

    dms deploy examples/ensembles/hello-web.yaml --wait
    dms status                       # the table of your deployments
    dms status ID --json
    dms events ID --follow
    dms shutdown ID --wait
    dms join ID -- curl http://web.internal:8080/   # inside the ensemble network

An ensemble is validated here first (every problem at once, exit 1) so nothing is sent
that the node would refuse for its shape. `--json` prints what a script parses: one
object, or with --wait / --follow one JSON object per line, the last one the outcome.
Exit 0 done, 1 refused or failed, 2 a usage mistake (a malformed ID among them: ids
are UUIDs, checked before anything is sent) or an unreachable node, 130 interrupted.
Nothing to do is done: `dms shutdown` of a deployment that had already ended says so
(its phase) and exits 0, as `dms leave` of a network not joined does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import click
import trio
from rich.console import Console
from rich.live import Live

from dms.actor import unstructure_result
from dms.deployment import DeploymentView, EventView
from dms.ensemble import Ensemble, load_ensemble
from dms.ensemble._report import Status, check_file, render_json, render_text
from dms.node._command import check_positive

from ._deployment_id import check_deployment_id
from ._display import (
    LiveView,
    Names,
    deployments_table,
    event_line,
    printable,
    status_table,
)
from ._errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Mistake,
    OperationFailed,
    run_async,
)
from ._follow import follow
from ._session import Session, Target, open_session
from ._target import client_options
from ._watch import Goal, Outcome, Verdict, Watch

ResolveTarget = Callable[[], Target]
DEFAULT_TIMEOUT = 120.0
MAX_EVENT_PAGES = 100
"""Pages of events (100 each) read at once, at most: what a node keeps of a deployment."""


def _print_json(record: Any) -> None:
    click.echo(json.dumps(record))
    sys.stdout.flush()


def _view_json(view: DeploymentView, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = unstructure_result(view)
    if outputs is not None:
        record["outputs"] = outputs
    return record


def _ending(verdict: Verdict, deployment: str, as_json: bool, view: DeploymentView | None,
            outputs: dict[str, str]) -> int:
    """Say how a wait ended and give the exit status."""
    if as_json:
        _print_json({"type": "final", "id": deployment, "outcome": verdict.outcome.value,
                     "reason": verdict.reason,
                     "status": None if view is None else _view_json(view, outputs)})
    reason = printable(" ".join(verdict.reason.splitlines()))
    if verdict.outcome in (Outcome.READY, Outcome.COMPLETED):
        if not as_json:
            click.echo(f"{verdict.outcome.value}: {reason}" if reason
                       else verdict.outcome.value)
        return 0
    word = "failed" if verdict.outcome is Outcome.FAILED else "still waiting"
    click.echo(f"Error: deployment {deployment} {word}: {reason}", err=True)
    if verdict.outcome is Outcome.WAITING:
        click.echo(f"it goes on; `dms shutdown {deployment}` stops it", err=True)
    return EXIT_FAILED


# -- deploy ------------------------------------------------------------------------------


@click.command()
@click.argument("ensemble_file", metavar="ENSEMBLE.yaml")
@client_options
@click.option("--wait", is_flag=True,
              help="Follow the deployment until every service is up and every task done "
                   "(exit 0), or it fails (exit 1, with the reason).")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              callback=check_positive,
              help="Seconds for it to be running (the node fails it past that); with "
                   "--wait, also how long to wait for it to be ready.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON: the id; with --wait, one event per line, then the outcome.")
def deploy(ensemble_file: str, target: ResolveTarget, wait: bool, timeout: float,
           as_json: bool) -> None:
    """Deploy ENSEMBLE.yaml on the node and print its id."""
    text, ensemble = read_valid_ensemble(ensemble_file, as_json)
    raise SystemExit(run_async(_deploy, target(), text, ensemble, wait, timeout, as_json))


def read_valid_ensemble(ensemble_file: str, as_json: bool) -> tuple[str, Ensemble]:
    """The file's text and ensemble; an invalid one ends the command with every problem
    at once (exit 1; 2 when it cannot be read), before anything is sent."""
    report = check_file(ensemble_file)
    if report.status is not Status.VALID:
        if as_json:
            click.echo(render_json([report]))
        else:
            click.echo(render_text([report]), err=True)
        raise SystemExit(EXIT_USAGE if report.status is Status.UNREADABLE else EXIT_FAILED)
    try:
        text = Path(ensemble_file).read_text()
        return text, load_ensemble(text, file=ensemble_file)
    except (OSError, ValueError) as exc:  # changed under us since it was checked
        raise OperationFailed(f"{ensemble_file}: {exc}") from None


async def _deploy(target: Target, text: str, ensemble: Ensemble, wait: bool, timeout: float,
                  as_json: bool) -> int:
    async with open_session(target) as session:
        deployment = await session.new(text, deadline=timeout)
        if as_json:
            _print_json({"type": "submitted", "id": deployment})
        else:
            click.echo(deployment)
        if not wait:
            return 0
        watch = Watch(Goal.READY, ensemble)
        try:
            verdict = await _follow_shown(session, deployment, watch, timeout, as_json)
        except KeyboardInterrupt:  # stops the watching, not the deployment: say so
            click.echo(f"interrupted; deployment {deployment} goes on "
                       f"(`dms shutdown {deployment}` stops it)", err=True)
            return EXIT_INTERRUPTED
        return _ending(verdict, deployment, as_json, watch.view, watch.outputs)


async def _follow_shown(session: Session, deployment: str, watch: Watch, timeout: float,
                        as_json: bool) -> Verdict:
    """`follow`, shown: JSON lines, a live view in a terminal, else plain lines."""
    name = Names(session.target.names)
    if as_json:
        return await follow(session, deployment, watch, timeout=timeout,
                            on_event=lambda event: _print_json(
                                {"type": "event", **unstructure_result(event)}))
    console = Console()
    if not console.is_terminal:
        return await follow(session, deployment, watch, timeout=timeout,
                            on_event=lambda event: click.echo(event_line(event, name)))
    live_view = LiveView(deployment, watch, name)
    with Live(live_view, console=console, refresh_per_second=4) as live:
        verdict = await follow(session, deployment, watch, timeout=timeout,
                               on_event=live_view.add,
                               on_status=lambda view: live.refresh())
        live.refresh()
    return verdict


PIPED_WIDTH = 160
"""Columns of a table written to a pipe or a file: wide enough that rows do not wrap."""


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


# -- status and list ---------------------------------------------------------------------


@click.command()
@click.argument("deployment", metavar="[ID]", required=False, callback=check_deployment_id)
@client_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(deployment: str | None, target: ResolveTarget, as_json: bool) -> None:
    """The status of deployment ID (placement, each allocation, the tasks' output), or
    without ID the table of your deployments."""
    raise SystemExit(run_async(_status, target(), deployment, as_json))


async def _status(target: Target, deployment: str | None, as_json: bool) -> int:
    console = _console()
    name = Names(target.names)
    async with open_session(target) as session:
        if deployment is None:
            views = [await session.status(listed.id) for listed in await session.list()]
            if as_json:
                _print_json([_view_json(view) for view in views])
            elif views:
                console.print(deployments_table(views))
            else:
                click.echo("no deployments")
            return 0
        view = await session.status(deployment)
        watch = Watch(Goal.ENDED)
        for _ in range(MAX_EVENT_PAGES):
            page = await session.events(deployment, watch.after)
            watch.take(page.events)
            if len(page.events) == 0 or page.final:
                break
        if as_json:
            _print_json(_view_json(view, watch.outputs))
        else:
            console.print(status_table(view, watch.outputs, name))
    return 0


@click.command("list")
@client_options
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_command(target: ResolveTarget, as_json: bool) -> None:
    """Your deployments on the node: id and phase, one per line."""
    raise SystemExit(run_async(_list, target(), as_json))


async def _list(target: Target, as_json: bool) -> int:
    async with open_session(target) as session:
        listed = await session.list()
    if as_json:
        _print_json([attrs.asdict(entry) for entry in listed])
    for entry in () if as_json else listed:
        click.echo(printable(f"{entry.id}  {entry.phase}"))
    return 0


# -- events and shutdown -----------------------------------------------------------------


@click.command()
@click.argument("deployment", metavar="ID", callback=check_deployment_id)
@client_options
@click.option("--follow", "following", is_flag=True,
              help="Keep printing new events until the deployment has ended.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
def events(deployment: str, target: ResolveTarget, following: bool, as_json: bool) -> None:
    """The events of deployment ID (with --follow, until it has ended)."""
    raise SystemExit(run_async(_events, target(), deployment, following, as_json))


async def _events(target: Target, deployment: str, following: bool, as_json: bool) -> int:
    name = Names(target.names)

    def show(event: EventView) -> None:
        if as_json:
            _print_json(unstructure_result(event))
        else:
            click.echo(event_line(event, name))

    async with open_session(target) as session:
        watch = Watch(Goal.ENDED)
        if following:
            await follow(session, deployment, watch, timeout=float("inf"), on_event=show)
            return 0
        for _ in range(MAX_EVENT_PAGES):
            page = await session.events(deployment, watch.after)
            for event in page.events:
                show(event)
            watch.take(page.events)
            if not page.events:
                break
    return 0


@click.command()
@click.argument("deployment", metavar="ID", callback=check_deployment_id)
@client_options
@click.option("--wait", is_flag=True, help="Wait until it has ended (its phase is final).")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              callback=check_positive, help="With --wait, how long to wait.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON: the phase; with --wait, its events, then the outcome.")
def shutdown(deployment: str, target: ResolveTarget, wait: bool, timeout: float,
             as_json: bool) -> None:
    """Shut deployment ID down: its allocations stop, its reservations are released.
    One that had already ended (completed or failed) is left as it is: said so, exit 0."""
    raise SystemExit(run_async(_shutdown, target(), deployment, wait, timeout, as_json))


async def _shutdown(target: Target, deployment: str, wait: bool, timeout: float,
                    as_json: bool) -> int:
    from dms.store import DeploymentPhase

    async with open_session(target) as session:
        phase = await session.shutdown(deployment)
        if phase in {p.value for p in DeploymentPhase if p.final}:
            # Nothing to do, said as such and exit 0 (as `dms leave` of a network not
            # joined): the deployment is ended, which is what was asked.
            if as_json:
                _print_json({"type": "already_ended", "id": deployment, "phase": phase})
                if wait:
                    _print_json({"type": "final", "id": deployment, "outcome": "completed",
                                 "reason": f"already ended ({phase})", "status": None})
            else:
                click.echo(printable(f"deployment {deployment} had already ended ({phase}): "
                                     "nothing to shut down"))
            return 0
        if as_json:
            _print_json({"type": "shutting_down", "id": deployment, "phase": phase})
        else:
            click.echo(printable(f"shutting down {deployment} (it was {phase})"))
        if not wait:
            return 0
        watch = Watch(Goal.ENDED)
        watch.after = (await _last_seq(session, deployment))
        verdict = await _follow_shown(session, deployment, watch, timeout, as_json)
        if verdict.outcome is Outcome.FAILED and watch.view is not None \
                and watch.view.phase == "failed":
            # stopped before it ran: ended, as asked; say how
            verdict = Verdict(Outcome.COMPLETED, f"ended (failed: {verdict.reason})")
        return _ending(verdict, deployment, as_json, watch.view, watch.outputs)


async def _last_seq(session: Session, deployment: str) -> int:
    """Where the events stand now (a shutdown follows from here, not from the start)."""
    view = await session.status(deployment)
    return max((event.seq for event in view.recent_events), default=0)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("deployment", metavar="ID", callback=check_deployment_id)
@click.argument("argv", metavar="[-- CMD...]", nargs=-1, type=click.UNPROCESSED)
@click.option("--json", "as_json", is_flag=True,
              help="Without CMD: print the namespace, address and subnet as JSON.")
@client_options
def join(deployment: str, argv: tuple[str, ...], as_json: bool,
         target: ResolveTarget) -> None:
    """Join deployment ID's ensemble network from the node (`subnet.join`): a
    namespace there with the subnet's gateway address. With CMD, run it inside (it
    must run on the node's host) and leave after, exiting with its status; without,
    print the namespace and stay joined until `dms leave ID`."""
    if argv and argv[0].startswith("-"):
        # unknown options are passed through for CMD, so a mistyped one of ours would
        # be run as the command inside the namespace, after joining: say it instead
        raise Mistake(f"no such option: {argv[0]} (a command to run inside goes after "
                      "`--`: dms join ID -- CMD...)")
    if argv and as_json:
        raise Mistake("--json: prints what joining gave, without CMD; CMD's output is "
                      "its own")
    raise SystemExit(run_async(_join, target(), deployment, argv, as_json))


async def _join(target: Target, deployment: str, argv: tuple[str, ...],
                as_json: bool = False) -> int:
    async with open_session(target) as session:
        joined = await session.join(deployment)
        namespace = joined["namespace"]
        if not argv:
            if as_json:
                _print_json({"type": "joined", "id": deployment, "namespace": namespace,
                             "address": joined["address"], "subnet": joined["subnet"]})
                return 0
            click.echo(printable(
                f"joined {deployment}: namespace {namespace}, address {joined['address']} "
                f"(subnet {joined['subnet']}); run commands with `ip netns exec {namespace} "
                f"CMD`; leave with `dms leave {deployment}`"))
            return 0
        try:
            if not Path("/run/netns", namespace).exists():
                raise OperationFailed(f"join: namespace {namespace} is on the node's host, "
                                      "not here: run `dms join` where the node runs")
            try:
                done = await trio.run_process(["ip", "netns", "exec", namespace, *argv],
                                              stdin=None, check=False)  # the terminal's
            except OSError as error:
                raise OperationFailed(f"join: cannot run {argv[0]!r}: {error}") from None
            return int(done.returncode)
        finally:
            with trio.CancelScope(shield=True):
                await session.leave(deployment)


@click.command()
@click.argument("deployment", metavar="ID", callback=check_deployment_id)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@client_options
def leave(deployment: str, as_json: bool, target: ResolveTarget) -> None:
    """Leave deployment ID's ensemble network (what `dms join ID` joined)."""
    raise SystemExit(run_async(_leave, target(), deployment, as_json))


async def _leave(target: Target, deployment: str, as_json: bool = False) -> int:
    async with open_session(target) as session:
        left = await session.leave(deployment)
    if as_json:
        _print_json({"type": "left" if left else "not_joined", "id": deployment})
    else:
        click.echo(f"left {deployment}" if left else f"{deployment}: this node had not joined it")
    return 0


def commands() -> Sequence[click.Command]:
    return (deploy, status, list_command, events, shutdown, join, leave)
