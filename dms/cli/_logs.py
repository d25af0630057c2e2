"""`dms logs ID ALLOCATION`: an allocation's output, as its deployment's owner reads it
through the node (`/dms/node/deployment/logs`; the node asks the provider).

    dms logs ID web                  # the last 200 lines of stdout and stderr
    dms logs ID web --tail 20 --stderr
    dms logs ID web --follow         # then only what is new, until it has ended

Following an allocation not made yet waits for it. The workload's stdout goes to stdout, its stderr to stderr, control characters
escaped. With --follow each poll asks from where the last answer ended, so no line is
printed twice or missed; what the node says it could not give (a log restarted, bytes
rotated away) is one `[dms: ...]` line on stderr. `--json`: one object per stream and
answer: {"stream", "text", "restarted", "skipped"}.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
import trio

from dms.executor import LogChunk, LogPosition
from dms.provider import wire

from ._deployment_id import check_deployment_id
from ._display import printable
from ._errors import EXIT_FAILED, OperationFailed, run_async
from ._session import Session, Target, open_session
from ._target import client_options

FOLLOW_INTERVAL = 1.0
"""Seconds between polls of --follow when the last one had nothing more waiting."""
STREAMS = ("stdout", "stderr")


@click.command()
@click.argument("deployment", metavar="ID", callback=check_deployment_id)
@click.argument("allocation", metavar="ALLOCATION")
@client_options
@click.option("--follow", "-f", "following", is_flag=True,
              help="Keep printing new output until the deployment has ended.")
@click.option("--tail", type=click.IntRange(0, wire.MAX_LOG_LINES), default=200,
              show_default=True, help="Lines of each stream to start with.")
@click.option("--stdout", "only", flag_value="stdout", help="Only the workload's stdout.")
@click.option("--stderr", "only", flag_value="stderr", help="Only the workload's stderr.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per stream and answer.")
def logs(deployment: str, allocation: str, target: Callable[[], Target], following: bool,
         tail: int, only: str | None, as_json: bool) -> None:
    """The output of ALLOCATION of deployment ID (its current run)."""
    raise SystemExit(run_async(_logs, target(), deployment, allocation, following, tail,
                               only, as_json))


async def _logs(target: Target, deployment: str, allocation: str, following: bool, tail: int,
                only: str | None, as_json: bool) -> int:
    wanted = [name for name in STREAMS if only in (None, name)]
    positions: dict[str, LogPosition | None] = dict.fromkeys(wanted)
    async with open_session(target) as session:
        while True:
            reply = await _read(session, deployment, allocation, tail, wanted, positions,
                                following)
            if reply is None:
                return 0  # followed until it ended
            if reply is NOT_YET:
                await trio.sleep(FOLLOW_INTERVAL)
                continue
            more = False
            for name in wanted:
                chunk: LogChunk | None = getattr(reply, name)
                if chunk is None:
                    continue
                _show(name, chunk, as_json)
                positions[name] = chunk.next
                more = more or chunk.truncated
                if following and chunk.next is None:
                    click.echo(f"Error: allocation {allocation}'s executor gives only the "
                               f"tail of its output; it cannot be followed", err=True)
                    return EXIT_FAILED
            if not following:
                return 0
            if not more:
                await trio.sleep(FOLLOW_INTERVAL)


NOT_YET = wire.LogsReply()
"""What `_read` answers, following, while the allocation is not allocated yet."""


async def _read(session: Session, deployment: str, allocation: str, tail: int,
                wanted: list[str], positions: dict[str, LogPosition | None],
                following: bool) -> wire.LogsReply | None:
    """One answer; following, None once the deployment has ended after its output was
    read, and NOT_YET while the allocation is still to be made."""
    query = wire.LogsQuery(tail=tail, stdout="stdout" in wanted, stderr="stderr" in wanted,
                           stdout_after=positions.get("stdout"),
                           stderr_after=positions.get("stderr"))
    try:
        return await session.logs(deployment, allocation, query)
    except OperationFailed as failure:
        started = any(position is not None for position in positions.values())
        if following and started and failure.refusal == "DeploymentEnded":
            click.echo(f"[dms: deployment {deployment} has ended]", err=True)
            return None
        if following and not started and failure.refusal == "NotAllocated":
            return NOT_YET  # `dms deploy ... && dms logs ID A -f`: it is on its way
        raise


def _show(stream: str, chunk: LogChunk, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"stream": stream, "text": chunk.text,
                               "restarted": chunk.restarted, "skipped": chunk.skipped}))
        sys.stdout.flush()
        return
    if chunk.restarted:
        click.echo(f"[dms: {stream} started again (the workload or its provider restarted); "
                   f"from its last lines]", err=True)
    if chunk.skipped:
        click.echo(f"[dms: {chunk.skipped} bytes of {stream} were rotated away before they "
                   f"were read]", err=True)
    if chunk.text:
        click.echo(printable(chunk.text), nl=False, err=stream == "stderr")
        (sys.stderr if stream == "stderr" else sys.stdout).flush()
