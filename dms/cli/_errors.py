"""How a `dms` command ends when it does not succeed: one line on stderr and an exit
status a script can act on, never a traceback.

    0  done
    1  the operation failed: refused (named), an invalid ensemble, a failed deployment
    2  a usage mistake, or the node cannot be reached (`Mistake`, `Unreachable`)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click
import trio

from dms._nursery import sole_failure
from dms.net import NetError
from dms.node._command import EXIT_INTERRUPTED, EXIT_USAGE, Mistake

from ._display import printable

EXIT_FAILED = 1

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "Mistake"]  # re-exported for the commands here


class _OneLine(click.ClickException):
    """Said on one line, with what came from the network made printable."""

    def format_message(self) -> str:
        return printable(" ".join(self.message.split("\n")))


class OperationFailed(_OneLine):
    """The node was reached and said no, or what was asked for failed; the message says
    what and, when it can, what to do about it. `refusal`: the name the node refused
    with, for a command that expects one (e.g. `DeploymentEnded` ends `logs --follow`)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, refusal: str | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal


class Unreachable(_OneLine):
    """No node answered at the address (or it was not the node expected there)."""

    exit_code = EXIT_USAGE

    def format_message(self) -> str:
        return f"unreachable: {super().format_message()}"


def run_async(main: Callable[..., Awaitable[int]], *args: Any) -> int:
    """`trio.run(main, *args)` for a command: its own errors come out as raised (one
    line and their exit status, from click), not wrapped in exception groups; a broken
    connection is `Unreachable`; Ctrl-C is `interrupted` and EXIT_INTERRUPTED."""
    try:
        return trio.run(main, *args)
    except BaseException as raised:
        failure = sole_failure(raised)
        if isinstance(failure, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        if isinstance(failure, click.ClickException):
            raise failure from None
        if isinstance(failure, NetError):
            raise Unreachable(str(failure)) from None
        raise
