"""A click group that imports a subcommand's module only when that subcommand runs.

`dms --version` and `dms --help` must answer in the time Python takes to start, and
`dms status` must not pay for `dms dev`'s supervisor or `dms cap`'s grant store: each
command module pulls in the parts of the node it drives. The group knows each lazy
subcommand by where it lives ("package.module:attribute") and by its one-line summary,
which is what `--help` lists without importing it; a test compares that listing with
the one click makes from the loaded commands, so the summaries cannot drift.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import click

EXIT_INTERRUPTED = 130  # as `dms.node._command`'s: importing that one is what is avoided


class LazyCommand(NamedTuple):
    """A subcommand not imported yet: where it is and what `--help` says of it. (A named
    tuple, not an attrs class: this module is on the path of `dms --version`, and
    importing attrs would be a sixth of that command's time.)"""

    location: str  # "package.module:attribute"; the attribute is a command, or makes one
    summary: str  # the command's help, first sentence: what the listing shortens

    def load(self) -> click.Command:
        module, _, attribute = self.location.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        command = found if isinstance(found, click.Command) else found()
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.location} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group whose `lazy` subcommands are imported on first lookup, then kept."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, LazyCommand] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            try:
                command = self.lazy[cmd_name].load()
            except KeyboardInterrupt:
                # Ctrl-C while the node is imported ends the command as any Ctrl-C
                # does, not with click's "Aborted!" (exit 1)
                sys.stderr.write("interrupted\n")
                raise SystemExit(EXIT_INTERRUPTED) from None
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, from the summaries of the commands not loaded yet."""
        names = [name for name in self.list_commands(ctx)
                 if name in self.lazy or not self.commands[name].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # a stand-in command shortens the summary the way click shortens a help
            shown = self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            rows.append((name, shown.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
