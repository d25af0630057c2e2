"""`dms dev`: a local network on loopback in the foreground, like `nomad agent -dev`.

    dms dev [--providers 3] [--data-dir D] [--provide cpu=1,ram=1Gi,disk=4Gi]
            [--ports 8000-8999] [--executor process] [--executor docker] [--network]
            [--network-dns-upstream IP[:PORT]]

One orchestrator node and N provider nodes, each a `dms node run` process of its own
on 127.0.0.1 (ports picked by the kernel); the organisation key they all anchor, the
grants it gives them and the user (printed as the `ucan` commands that make the same);
and a client config in the data directory so that `dms deploy`, `dms status`, ... in
another shell reach the orchestrator as the user with no flags. Ctrl-C (or SIGTERM)
stops the orchestrator (its deployments are shut down), then the providers, and
removes the client config: nothing is left running. Should the supervisor itself be
killed, each node stops when its stdin closes. A provider that dies (SIGKILL, a crash)
cannot stop its workloads: the network then stops, and before it exits it removes
what every provider left (`dms.provider.reap_leftovers`, what a restarting provider
removes), as it does before it empties the nodes' state at the next start.

All the network's keys share one passphrase ($UCAN_PASSPHRASE, else asked once); the
nodes get it in their environment, and `dms deploy` asks for it (or reads it there) to
open the user's key.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click
import trio

from dms.cleanup import shielded_cleanup
from dms.network import InvalidPlan, missing_capability, parse_upstream
from dms.node._offer import InvalidOffer, parse_offer, parse_ports
from dms.node._state_lock import LOCK_FILE, StateDirError, StateDirInUse, hold_state_dir
from dms.provider import WorkDirInUse, reap_leftovers
from dms.workload import ExecutorKind
from ucan.keystore import Keystore, KeystoreError, resolve_passphrase

from ._config import (
    ClientConfig,
    config_path,
    data_directory,
    remove_client_config,
    write_client_config,
)
from ._devnet import ORCHESTRATOR, ORG, USER, DevLayout, DevNetwork, prepare_network
from ._errors import EXIT_FAILED, EXIT_INTERRUPTED, Mistake
from ._supervisor import DevFailed, NodeSpec, Supervisor, open_supervisor

DEFAULT_OFFER = "cpu=1,ram=1Gi,disk=4Gi"
DEFAULT_PORTS = "8000-8999"
READY_TIMEOUT = 30.0
"""Seconds for every provider to link with the orchestrator."""
MAX_PROVIDERS = 32
DEV_KEYS = "the dev network's keys"  # they share one passphrase
REAP_TIMEOUT = 60.0
"""Seconds to remove what the providers left, at start or at the end."""


class LeftoversKept(Exception):
    """What a provider left could not all be removed; the message names the node's
    work directory and why."""


def _providers(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if not 1 <= value <= MAX_PROVIDERS:
        raise Mistake(f"--providers must be 1 to {MAX_PROVIDERS}, got {value}")
    return value


def _offer(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_offer(value)
    except InvalidOffer as exc:
        raise Mistake(f"--provide: {exc}") from None
    return value


def _ports(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_ports(value)
    except InvalidOffer as exc:
        raise Mistake(f"--ports: {exc}") from None
    return value


@click.command()
@click.option("--providers", default=3, show_default=True, type=int, callback=_providers,
              help="Provider nodes to run besides the orchestrator.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Where the network's keys, grants and node state go, and the client "
                   "config (default $DMS_DATA_DIR or ~/.local/share/dms).")
@click.option("--provide", "offer", default=DEFAULT_OFFER, show_default=True,
              callback=_offer, help="What each provider offers of this machine.")
@click.option("--ports", default=DEFAULT_PORTS, show_default=True, callback=_ports,
              help="Host ports each provider's workloads may publish (they share them: "
                   "all run on this machine).")
@click.option("--executor", "executors", multiple=True, default=("process",),
              show_default=True, type=click.Choice([kind.value for kind in ExecutorKind]),
              help="An executor each provider offers (repeat): docker needs a docker "
                   "engine here.")
@click.option("--network", is_flag=True,
              help="The providers host the ensemble network (private 10/8 addresses, "
                   "<name>.internal): needs root, /dev/net/tun and iproute2.")
@click.option("--network-dns-upstream", "dns_upstream", metavar="IP[:PORT]",
              help="With --network: where the providers' ensemble resolvers forward names "
                   "outside .internal (default: refused).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object when the network is ready (and nothing else).")
def dev(providers: int, data_dir: str | None, offer: str, ports: str,
        executors: tuple[str, ...], network: bool, dns_upstream: str | None,
        as_json: bool) -> None:
    """Run a local dev network until Ctrl-C: an orchestrator and N providers on
    127.0.0.1, its grants made, and a client config for the deployment commands.
    Exit 0 once stopped, 1 when a node fails, 2 on a usage mistake, 130 when
    interrupted before it was ready."""
    if dns_upstream is not None:
        if not network:
            raise Mistake("--network-dns-upstream: forwards for the ensemble network "
                          "(add --network)")
        try:
            parse_upstream(dns_upstream)  # each provider parses it again, as given
        except InvalidPlan as exc:
            raise Mistake(f"--network-dns-upstream: {exc.problem}") from None
    if network and (missing := missing_capability()) is not None:
        raise Mistake(f"--network: this host cannot run the ensemble network: {missing}")
    data = data_directory(data_dir)
    layout = DevLayout(data / "dev", providers)
    first = not (layout.keystore / f"{ORG}.key").exists()
    try:
        passphrase = resolve_passphrase(DEV_KEYS, confirm=first, prompt=_prompt)
    except KeystoreError as exc:
        raise Mistake(str(exc)) from None
    except (KeyboardInterrupt, EOFError):
        click.echo("interrupted", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    env = {**os.environ, "UCAN_PASSPHRASE": passphrase}
    try:
        provide = ("--provide", offer, "--ports", ports,
                   *(arg for kind in executors for arg in ("--executor", kind)),
                   *(("--network",) if network else ()),
                   *(("--network-dns-upstream", dns_upstream) if dns_upstream else ()))
        kinds = tuple(ExecutorKind(kind) for kind in executors)
        status = trio.run(_run_alone, layout, passphrase, provide, env, config_path(data),
                          as_json, _Leftovers(layout, kinds, network))
    except KeyboardInterrupt:  # before the signal handlers were in place
        click.echo("interrupted", err=True)
        status = EXIT_INTERRUPTED
    raise SystemExit(status)


class _Leftovers:
    """Removes what the dev network's providers left running (see the module doc)."""

    def __init__(self, layout: DevLayout, kinds: tuple[ExecutorKind, ...],
                 network: bool) -> None:
        self.layout = layout
        # process leftovers need no engine: they are looked for whatever this run opens
        self.kinds = tuple(dict.fromkeys((ExecutorKind.PROCESS, *kinds)))
        self.network = network

    async def reap(self) -> None:
        """Remove them under every node's state directory (a node of an earlier run
        with more providers too), saying on stderr what was removed; LeftoversKept if
        some could not be (a provider still runs there, or the directory fails): the
        other nodes' leftovers are removed all the same."""
        nodes = self.layout.root / "nodes"
        if not nodes.is_dir():
            return
        keys = Keystore(self.layout.keystore)
        problems: list[str] = []
        with trio.move_on_after(REAP_TIMEOUT) as bounded:
            for state in sorted(nodes.iterdir()):
                if state.is_dir() and (problem := await self._reap_node(keys, state)):
                    problems.append(problem)
        if bounded.cancelled_caught:
            problems.append(f"removing what the providers left under {nodes} took over "
                            f"{REAP_TIMEOUT:g} s")
        if problems:
            raise LeftoversKept("; ".join(problems))

    async def _reap_node(self, keys: Keystore, state: Path) -> str | None:
        """Reap one node's leftovers; what kept them, if anything did."""
        work = state / "work"  # where `dms node run --state-dir` puts it
        try:
            did: str | None = keys.did(state.name)
        except (KeystoreError, OSError):
            did = None  # its containers and namespaces cannot be told apart: left alone
        try:
            reaped = await reap_leftovers(
                work, did or "", self.kinds if did else (ExecutorKind.PROCESS,),
                network=self.network and did is not None)
        except WorkDirInUse as exc:
            return f"node {state.name}: {exc}"
        except OSError as exc:
            return f"node {state.name}: cannot remove what it left in {work}: " \
                f"{exc.strerror or exc}"
        if reaped.executions:
            _relay(f"node {state.name} left workloads behind; removed "
                   f"{len(reaped.executions)}: {', '.join(reaped.executions)}")
        if reaped.namespaces:
            _relay(f"node {state.name} left network namespaces; removed: "
                   f"{', '.join(reaped.namespaces)}")
        return None


async def _run_alone(layout: DevLayout, passphrase: str, provide: tuple[str, ...],
                     env: dict[str, str], path: Path, as_json: bool,
                     leftovers: _Leftovers) -> int:
    """`_run`, holding the network's directory: one dev network per data directory (a
    second one is refused before it touches any key or grant of the first). What an
    earlier run's providers left is removed before their state is emptied."""
    try:
        async with hold_state_dir(layout.root):
            try:
                await leftovers.reap()
            except LeftoversKept as exc:
                raise Mistake(f"{exc}; nothing was started") from None
            try:
                network = prepare_network(layout, passphrase)
            except KeystoreError as exc:
                raise Mistake(f"{exc} (the dev network's keys are in {layout.keystore})"
                              ) from None
            except OSError as exc:
                raise Mistake(f"cannot prepare {layout.root}: {exc.strerror or exc}") from None
            return await _run(network, provide, env, path, as_json, leftovers)
    except StateDirInUse:
        raise Mistake(f"{layout.root} is in use by another `dms dev`{_holder(layout.root)}: "
                      f"stop it, or give this one another --data-dir") from None
    except StateDirError as exc:
        raise Mistake(str(exc)) from None


def _holder(directory: Path) -> str:
    try:
        pid = (directory / LOCK_FILE).read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _prompt(text: str) -> str:
    """The keystore's prompt, worded for all the network's keys at once."""
    return getpass.getpass(text.replace(f"key {DEV_KEYS!r}", DEV_KEYS))


async def _run(network: DevNetwork, provide: tuple[str, ...], env: dict[str, str],
               path: Path, as_json: bool, leftovers: _Leftovers) -> int:
    """Start the network, announce it, and run until a signal (or a node's death);
    once every node has stopped, remove what a provider that died left running."""
    say: Callable[[str], None] = _quiet if as_json else _say
    ready = False
    config: ClientConfig | None = None
    failures: list[str] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with open_supervisor(env, _relay) as supervisor, trio.open_nursery() as tasks:
                async def on_signal() -> None:
                    async for _ in signals:
                        say("stopping the dev network")
                        tasks.cancel_scope.cancel()
                        return

                tasks.start_soon(on_signal)
                config = await _start(supervisor, network, provide)
                write_client_config(path, config)
                ready = True
                _announce(network, config, [node.command for node in supervisor.nodes],
                          path, as_json)
                dead = await supervisor.deaths.receive()
                raise DevFailed(dead.obituary())
        except* DevFailed as failed:
            failures = [str(failure) for failure in _leaves(failed)]
        finally:
            if config is not None:
                remove_client_config(path, config)
            with shielded_cleanup(REAP_TIMEOUT + 10):
                try:
                    await leftovers.reap()
                except LeftoversKept as exc:
                    failures.append(str(exc))
    for failure in failures:
        click.echo(f"Error: {failure}", err=True)
    if failures:
        return EXIT_FAILED
    say("stopped")
    return 0 if ready else EXIT_INTERRUPTED


def _leaves(group: BaseExceptionGroup[DevFailed]) -> list[BaseException]:
    found: list[BaseException] = []
    for inner in group.exceptions:
        found.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return found


async def _start(supervisor: Supervisor, network: DevNetwork,
                 provide: tuple[str, ...]) -> ClientConfig:
    """`provide`: the `dms node run` options that make a node a provider."""
    layout = network.layout
    org = network.dids[ORG]

    def options(name: str) -> tuple[str, ...]:
        return ("--keystore", str(layout.keystore), "--key-name", name,
                "--state-dir", str(layout.state_dir(name)), "--anchor", org,
                "--proof", str(layout.grant_file(name)))

    orchestrator = await supervisor.start(NodeSpec(ORCHESTRATOR, options(ORCHESTRATOR),
                                                   stage=0))
    assert orchestrator.address is not None and orchestrator.did is not None
    specs = [NodeSpec(name, (*options(name), *provide,
                             "--bootstrap", orchestrator.address), stage=1)
             for name in layout.nodes[1:]]
    async with trio.open_nursery() as starting:
        for spec in specs:
            starting.start_soon(supervisor.start, spec)
    async with trio.open_nursery() as linking:
        async def linked() -> None:
            with trio.move_on_after(READY_TIMEOUT):
                await orchestrator.wait_peers(len(specs))
            linking.cancel_scope.cancel()

        async def none_died() -> None:
            dead = await supervisor.deaths.receive()
            raise DevFailed(dead.obituary())

        linking.start_soon(linked)
        linking.start_soon(none_died)
    if orchestrator.peers < len(specs):
        raise DevFailed(f"only {orchestrator.peers} of {len(specs)} providers linked with the "
                        f"orchestrator within {READY_TIMEOUT:g} s")
    names = {node.did: node.name for node in supervisor.nodes if node.did is not None}
    return ClientConfig(node=orchestrator.address, node_did=orchestrator.did,
                        keystore=str(layout.keystore), key=USER,
                        proofs=tuple(str(layout.grant_file(file))
                                     for file, _ in layout.user_grants), names=names,
                        written_by=f"dms dev (pid {os.getpid()})")


def _announce(network: DevNetwork, config: ClientConfig, nodes: list[str], path: Path,
              as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"event": "ready", "orchestrator": config.node,
                               "orchestrator_did": config.node_did, "config": str(path),
                               "org": network.dids[ORG], "user": network.dids[USER],
                               "nodes": {name: did for did, name in config.names.items()},
                               "commands": list(network.commands),
                               "node_commands": nodes}))
        sys.stdout.flush()
        return
    lines = ["", "the dev network's keys and grants, as `ucan` commands that make the same:"]
    lines += [f"  {command}" for command in network.commands]
    lines += ["", "the nodes, each started as (with UCAN_PASSPHRASE in its environment):"]
    lines += [f"  {command}" for command in nodes]
    lines += ["", f"nodes (each anchors org {network.dids[ORG]}):"]
    lines += [f"  {name:<13} {did}" for did, name in sorted(config.names.items(),
                                                            key=lambda item: item[1])]
    lines += ["", f"client config: {path} (`dms deploy`, `dms status`, ... use it)",
              "in another shell:",
              f"  {_data_dir_hint(path)}dms deploy examples/ensembles/hello-web.yaml --wait",
              f"  {_data_dir_hint(path)}dms node status",
              "Ctrl-C stops the network",
              f"ready: orchestrator at {config.node}"]  # last: a script may read up to it
    click.echo("\n".join(lines))
    sys.stdout.flush()


def _data_dir_hint(path: Path) -> str:
    """What another shell needs to find this network's client config."""
    directory = path.parent
    return "" if directory == data_directory(None) else \
        f"DMS_DATA_DIR={shlex.quote(str(directory))} "


def _quiet(text: str) -> None:
    pass


def _say(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


def _relay(line: str) -> None:
    click.echo(line, err=True)

