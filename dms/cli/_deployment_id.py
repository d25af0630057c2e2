"""A deployment id as the commands take it (`dms status ID`, `dms shutdown ID`, ...):
checked before anything is sent, so a typo is a usage mistake (one line, exit 2)
instead of a round trip to the node and an "unknown deployment" refusal that reads as
if the deployment had existed."""

from __future__ import annotations

import uuid

import click

from dms.node._command import Mistake

EXAMPLE_ID = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"
SHOWN = 80
"""Characters of a wrong id repeated in the message, at most."""


def check_deployment_id(ctx: click.Context, param: click.Parameter,
                        value: str | None) -> str | None:
    """For ID arguments: the id in the form a node gives it (a UUID, 36 characters in
    lowercase hex and dashes; upper case is taken and lowered), None when not given;
    any other text is a `Mistake` naming it and what an id looks like."""
    if value is None:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value.lower():
        shown = value if len(value) <= SHOWN else value[:SHOWN] + "..."
        name = param.human_readable_name.strip("[]")  # `[ID]` where it may be left out
        raise Mistake(f"{name} {shown!r} is not a deployment id: an id is a UUID like "
                      f"{EXAMPLE_ID}, as `dms deploy` and `dms list` print it")
    return str(parsed)
