"""The `dms` command. Subcommands live with their packages and in this package's
modules; this module only wires them.

    dms validate FILE...          check ensemble files
    dms init                      make a node's data directory (config, keys, owner grant)
    dms node run | ping           run a node, ping one
    dms node status | peers | resources   what a node is, sees, offers (also `dms peers`,
                                  `dms resources`)
    dms cap ...                   a node's anchors and grants, in its data directory
    dms dev                       a local network on loopback, in the foreground
    dms deploy | status | list | events | shutdown    a user's deployments on a node
    dms logs ID ALLOCATION [--follow]   an allocation's output, only what is new
    dms join ID [-- CMD...] | leave ID  the deployment's ensemble network, from the node
    dms plan FILE                 where a deployment would be placed, at what price;
                                  nothing is deployed or reserved
"""

from __future__ import annotations

import click

from dms.ensemble._report import check_file, exit_status, render_json, render_text
from dms.node import node_command as node

from ._cap import cap
from ._deploy import commands as deployment_commands
from ._dev import dev
from ._init import init
from ._logs import logs
from ._node_report import node_status, peers, resources
from ._plan import plan

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pydms", prog_name="dms")
def main() -> None:
    """dms: deploy compute ensembles on a network of UCAN-authorized nodes."""


@main.command()
# plain strings: a missing file or a directory is an unreadable result of its own,
# reported with the others, not a usage error that hides them
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check ensemble FILES; exit 0 if all are valid, 1 if one is invalid, 2 if one is
    unreadable (missing, a directory, not YAML, too big). Warnings (ignored unknown
    keys) are printed but do not make a file invalid."""
    reports = [check_file(name) for name in files]
    click.echo(render_json(reports) if as_json else render_text(reports))
    raise SystemExit(int(exit_status(reports)))


for report in (node_status, peers, resources):
    node.add_command(report)
main.add_command(node)
main.add_command(peers)
main.add_command(resources)
main.add_command(dev)
main.add_command(init)
main.add_command(cap)
main.add_command(logs)
main.add_command(plan)
for command in deployment_commands():
    main.add_command(command)
