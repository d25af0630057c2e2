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

from ._lazy import LazyCommand, LazyGroup

__all__ = ["main"]

# Where each subcommand lives and its help's first sentence; a subcommand's module (and
# the part of the node it needs) is imported only when that subcommand runs.
_COMMANDS = {
    "cap": LazyCommand("dms.cli._cap:cap",
                       "A node's anchors and grants, in its data directory (see `dms init`)."),
    "deploy": LazyCommand("dms.cli._deploy:deploy",
                          "Deploy ENSEMBLE.yaml on the node and print its id."),
    "dev": LazyCommand("dms.cli._dev:dev",
                       "Run a local dev network until Ctrl-C: an orchestrator and N providers "
                       "on 127.0.0.1, its grants made, and a client config for the deployment "
                       "commands."),
    "events": LazyCommand("dms.cli._deploy:events",
                          "The events of deployment ID (with --follow, until it has ended)."),
    "init": LazyCommand("dms.cli._init:init",
                        "Make a node's data directory: config, keys, the owner's grant."),
    "join": LazyCommand("dms.cli._deploy:join",
                        "Join deployment ID's ensemble network from the node (`subnet.join`): "
                        "a namespace there with the subnet's gateway address."),
    "leave": LazyCommand("dms.cli._deploy:leave",
                         "Leave deployment ID's ensemble network (what `dms join ID` joined)."),
    "list": LazyCommand("dms.cli._deploy:list_command",
                        "Your deployments on the node: id and phase, one per line."),
    "logs": LazyCommand("dms.cli._logs:logs",
                        "The output of ALLOCATION of deployment ID (its current run)."),
    "node": LazyCommand("dms.cli:node_group",
                        "Run a node; ping one, or ask what it is, sees and offers."),
    "peers": LazyCommand("dms.cli._node_report:peers",
                         "The node's peers: each one's address, whether linked now, its RTT."),
    "plan": LazyCommand("dms.cli._plan:plan",
                        "Show where ENSEMBLE.yaml would be placed now, and at what price; "
                        "deploy nothing."),
    "resources": LazyCommand("dms.cli._node_report:resources",
                             "What the node offers to deployments: capacity, reserved, free, "
                             "the executors it really opened, location, price."),
    "shutdown": LazyCommand("dms.cli._deploy:shutdown",
                            "Shut deployment ID down: its allocations stop, its reservations "
                            "are released."),
    "status": LazyCommand("dms.cli._deploy:status",
                          "The status of deployment ID (placement, each allocation, the tasks' "
                          "output), or without ID the table of your deployments."),
}


@click.group(cls=LazyGroup, lazy=_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
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
    from dms.ensemble._report import check_file, exit_status, render_json, render_text

    reports = [check_file(name) for name in files]
    click.echo(render_json(reports) if as_json else render_text(reports))
    raise SystemExit(int(exit_status(reports)))


def node_group() -> click.Group:
    """`dms node`: the node's own group, with the reports that ask a node about itself."""
    from dms.node import node_command

    from ._node_report import node_status, peers, resources

    for report in (node_status, peers, resources):
        node_command.add_command(report)
    return node_command
