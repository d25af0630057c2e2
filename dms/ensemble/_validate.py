"""Semantic rules of an ensemble: what a well-shaped file can still get wrong.

Pure functions over a structured `Ensemble`; each rule yields `(path, message)` for
every violation, so one run reports them all. Paths use the YAML keys, messages say
what would be valid.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator

import attrs

from dms.ensemble import _spec as spec
from dms.ensemble._bounds import MAX_BYTES, MAX_CORES, MIN_CORES, MIN_MEMORY
from dms.ensemble._problems import Path, PathPart
from dms.ensemble._units import format_size
from dms.workload import HealthCheckKind

Finding = tuple[Path, str]
Rule = Callable[["Context"], Iterator[Finding]]

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
CONTINENTS = {
    "af": "africa",
    "an": "antarctica",
    "as": "asia",
    "eu": "europe",
    "na": "north america",
    "oc": "oceania",
    "sa": "south america",
}
MIN_PUBLIC_PORT = 1025  # providers do not hand out privileged ports


@attrs.frozen
class Context:
    """The ensemble under check, and the paths whose values failed to structure (they
    hold stand-ins, see `structure.salvage_ensemble`). Findings at or under a broken path
    are dropped by the caller; rules that read a value to judge another one ask
    `damaged` first, so a broken value is reported once, by the structural pass."""

    ensemble: spec.Ensemble
    broken: frozenset[Path] = frozenset()

    def missing(self, section: str, name: str) -> bool:
        """True when `name` is surely not defined in top-level `section`: salvage keeps
        every name, so only a section that is not a mapping at all is unknown."""
        return (section,) not in self.broken and name not in getattr(self.ensemble, section)

    def damaged(self, *path: PathPart) -> bool:
        """True when the value at `path`, something inside it, or what holds it, failed."""
        return any(b[: len(path)] == path or path[: len(b)] == b for b in self.broken)

    def nodes_complete(self) -> bool:
        """Whether every node's allocation list is known, so "on no node" is sure."""
        return not any(
            b[:1] == ("nodes",) and (len(b) <= 2 or b[2] == "allocations") for b in self.broken
        )


def continent_code(name: str) -> str | None:
    """`Europe` / `eu` -> `EU`; None for anything that is not a continent."""
    folded = name.strip().casefold()
    if folded in CONTINENTS:
        return folded.upper()
    for code, full in CONTINENTS.items():
        if folded == full:
            return code.upper()
    return None


def _suggest(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    if known:
        return f"; known: {', '.join(sorted(known))}"
    return ""


def is_dns_label(name: str) -> bool:
    return _LABEL.fullmatch(name) is not None


def is_dns_name(name: str) -> bool:
    return len(name) <= 253 and all(is_dns_label(label) for label in name.split("."))


def check_names(ctx: Context) -> Iterator[Finding]:
    """Allocation and node names are DNS labels, dns_names are DNS names, and the
    `.internal` name of every allocation (dns_name, else its name) is unique."""
    ensemble = ctx.ensemble
    if not ensemble.allocations:
        yield ("allocations",), "an ensemble needs at least one allocation"
    for section, names in (("allocations", ensemble.allocations), ("nodes", ensemble.nodes)):
        seen: dict[str, str] = {}
        for name in names:
            if not is_dns_label(name):
                yield (section, name), (
                    f"name {name!r} is not a DNS label: use letters, digits and '-', "
                    "at most 63, not starting or ending with '-'"
                )
            if name.casefold() in seen:
                yield (section, name), f"name {name!r} differs from {seen[name.casefold()]!r} only in case"
            seen.setdefault(name.casefold(), name)
    owners: dict[str, str] = {}
    for name, allocation in ensemble.allocations.items():
        dns = allocation.dns_name
        if dns is not None and not is_dns_name(dns):
            yield ("allocations", name, "dns_name"), (
                f"{dns!r} is not a DNS name: dot-separated labels of letters, digits and '-'"
            )
        if ctx.damaged("allocations", name, "dns_name"):
            continue  # its DNS name is unknown
        effective = (dns or name).casefold()
        if effective in owners:
            where = ("allocations", name, "dns_name") if dns else ("allocations", name)
            yield where, f"DNS name {dns or name!r} is already used by allocation {owners[effective]!r}"
        owners.setdefault(effective, name)


def check_placement(ctx: Context) -> Iterator[Finding]:
    """Every allocation is on exactly one node; nodes name existing allocations."""
    ensemble = ctx.ensemble
    placed: dict[str, str] = {}
    for node_name, node in ensemble.nodes.items():
        if not node.allocations:
            yield ("nodes", node_name, "allocations"), "a node needs at least one allocation"
        for index, allocation in enumerate(node.allocations):
            path = ("nodes", node_name, "allocations", index)
            if ctx.missing("allocations", allocation):
                yield path, f"no allocation named {allocation!r}" + _suggest(allocation, ensemble.allocations)
            elif allocation in placed:
                yield path, f"allocation {allocation!r} is already on node {placed[allocation]!r}; an allocation belongs to one node"
            else:
                placed[allocation] = node_name
    if not ctx.nodes_complete():
        return
    if not ensemble.nodes and ensemble.allocations:
        yield ("nodes",), "no nodes: list each allocation under a node in `nodes`"
        return
    for name in ensemble.allocations:
        if name not in placed:
            yield ("allocations", name), f"allocation {name!r} is on no node: add it to one node's `allocations`"


def check_dependencies(ctx: Context) -> Iterator[Finding]:
    """depends_on names other allocations, without cycles. They may be on other nodes:
    the orchestrator starts the whole ensemble in dependency order, across providers."""
    ensemble = ctx.ensemble
    for name, allocation in ensemble.allocations.items():
        for index, dependency in enumerate(allocation.depends_on):
            path = ("allocations", name, "depends_on", index)
            if dependency == name:
                yield path, "an allocation cannot depend on itself"
            elif ctx.missing("allocations", dependency):
                yield path, f"no allocation named {dependency!r}" + _suggest(dependency, ensemble.allocations)
    yield from _cycles(ensemble)


def _cycles(ensemble: spec.Ensemble) -> Iterator[Finding]:
    graph = {
        name: [d for d in a.depends_on if d in ensemble.allocations and d != name]
        for name, a in ensemble.allocations.items()
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if start in state:
            continue
        path = [start]
        iterators = [iter(graph[start])]
        state[start] = 1
        while iterators:
            successor = next(iterators[-1], None)
            if successor is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(successor) == 1:
                cycle = path[path.index(successor) :] + [successor]
                yield ("allocations", successor, "depends_on"), "dependency cycle: " + " -> ".join(cycle)
            elif successor not in state:
                state[successor] = 1
                path.append(successor)
                iterators.append(iter(graph[successor]))


def check_edges(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    for index, edge in enumerate(ensemble.edge_constraints):
        path: Path = ("edge_constraints", index)
        for position, node in enumerate(edge.edges):
            if ctx.missing("nodes", node):
                yield (*path, "edges", position), f"no node named {node!r}" + _suggest(node, ensemble.nodes)
        if edge.edges[0] == edge.edges[1]:
            yield (*path, "edges"), "an edge joins two different nodes"
        if edge.rtt is not None and edge.rtt < 0:
            yield (*path, "rtt"), "rtt cannot be negative (0 means any)"
        if edge.bw is not None and edge.bw < 0:
            yield (*path, "bw"), "bw cannot be negative (0 means any)"


def check_executions(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    for name, allocation in ensemble.allocations.items():
        path: Path = ("allocations", name, "execution")
        execution = allocation.execution
        agreeing = ctx.damaged("allocations", name, "executor") or ctx.damaged(*path, "type")
        if not agreeing and execution.type is not allocation.executor:
            yield (*path, "type"), (
                f"execution is for {execution.type.value} but executor is "
                f"{allocation.executor.value}: they must agree"
            )
        for field_name in ("image", "kernel_image", "root_file_system", "command"):
            if getattr(execution, field_name, None) == "":
                yield (*path, field_name), f"{field_name} cannot be empty"
        for index, entry in enumerate(getattr(execution, "environment", ())):
            key, equals, _ = entry.partition("=")
            if not equals or not _ENV_KEY.fullmatch(key):
                yield (*path, "environment", index), (
                    f"{entry!r} is not KEY=VALUE with KEY made of letters, digits and '_'"
                )


def check_resources(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    for template, resources in ensemble.resources.items():
        path: Path = ("resources", template)
        yield from _resource_values(resources, path)
        if resources.name is not None and resources.name != template:
            yield (*path, "name"), f"template name {resources.name!r} differs from its key {template!r}"
    for name, allocation in ensemble.allocations.items():
        path = ("allocations", name, "resources")
        if isinstance(allocation.resources, str):
            if ctx.missing("resources", allocation.resources):
                yield path, f"no resources template named {allocation.resources!r}" + _suggest(
                    allocation.resources, ensemble.resources
                )
        else:
            yield from _resource_values(allocation.resources, path)
    yield from _node_totals(ctx)


def _resource_values(resources: spec.ResourceSpec, path: Path) -> Iterator[Finding]:
    cores = resources.cpu.cores
    if not MIN_CORES <= cores <= MAX_CORES:
        yield (*path, "cpu", "cores"), _out_of_bounds("cpu cores", _cores(cores), cores < MIN_CORES)
    sizes: list[tuple[str, Path, int]] = [("ram size", ("ram", "size"), resources.ram.size)]
    if resources.disk is not None:
        sizes.append(("disk size", ("disk", "size"), resources.disk.size))
    for index, gpu in enumerate(resources.gpus):
        if gpu.memory is not None:
            sizes.append(("gpu memory", ("gpus", index, "memory"), gpu.memory))
    for what, where, size in sizes:
        if size < MIN_MEMORY:
            yield (*path, *where), _out_of_bounds(what, format_size(size), True)


def _out_of_bounds(what: str, value: str, low: bool) -> str:
    if low:
        bound = "0.001 (1m)" if what == "cpu cores" else format_size(MIN_MEMORY)
        return f"{what} {value} is below the minimum of {bound}"
    return f"{what} {value} is above the maximum of {_cores(MAX_CORES)}"


def _cores(cores: float) -> str:
    return f"{cores:.15g}"


def _node_totals(ctx: Context) -> Iterator[Finding]:
    """What a node asks of one provider is the sum of its allocations, and that sum
    travels as one 64-bit integer (bytes) or one cpu figure."""
    ensemble = ctx.ensemble
    for node_name, node in ensemble.nodes.items():
        cores, ram, disk = 0.0, 0, 0
        for allocation in node.allocations:
            try:
                resources = ensemble.resources_of(allocation)
            except KeyError:  # reported as a missing name
                continue
            if isinstance(resources, spec.ResourceSpec):  # a stand-in may be a name
                # an allocation already out of bounds is reported on its own
                cores += resources.cpu.cores if resources.cpu.cores <= MAX_CORES else 0.0
                ram += resources.ram.size
                disk += resources.disk.size if resources.disk is not None else 0
        path: Path = ("nodes", node_name, "allocations")
        if cores > MAX_CORES:
            yield path, f"the allocations of node {node_name!r} need {_cores(cores)} cpu cores in total, above the maximum of {_cores(MAX_CORES)}"
        for what, total in (("ram", ram), ("disk", disk)):
            if total > MAX_BYTES:
                yield path, (
                    f"the allocations of node {node_name!r} need {format_size(total)} of {what} in total, "
                    "above the maximum of 2**63-1 bytes"
                )


def check_ports(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    for node_name, node in ensemble.nodes.items():
        publics: dict[int, int] = {}
        privates: dict[tuple[str, int], int] = {}
        for index, port in enumerate(node.ports):
            path: Path = ("nodes", node_name, "ports", index)
            if not 1 <= port.private <= 65535:
                yield (*path, "private"), f"private port {port.private} is not in 1-65535"
            if port.public != 0 and not MIN_PUBLIC_PORT <= port.public <= 65535:
                yield (*path, "public"), (
                    f"public port {port.public} is not in {MIN_PUBLIC_PORT}-65535 (0 = any free port)"
                )
            if port.allocation not in node.allocations and not ctx.damaged("nodes", node_name, "allocations"):
                yield (*path, "allocation"), (
                    f"allocation {port.allocation!r} is not on node {node_name!r}"
                    + _suggest(port.allocation, node.allocations)
                )
            if port.public != 0:
                if port.public in publics:
                    yield (*path, "public"), f"public port {port.public} is already used by ports[{publics[port.public]}]"
                publics.setdefault(port.public, index)
            key = (port.allocation, port.private)
            if key in privates:
                yield (*path, "private"), f"private port {port.private} of {port.allocation!r} is already mapped by ports[{privates[key]}]"
            privates.setdefault(key, index)


def check_nodes(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    for node_name, node in ensemble.nodes.items():
        path: Path = ("nodes", node_name)
        if node.redundancy < 0:
            yield (*path, "redundancy"), "redundancy cannot be negative"
        if node.peer is not None and not node.peer.strip():
            yield (*path, "peer"), "peer cannot be empty: give a provider's peer id or remove it"
        if node.peer is not None and node.peer in ensemble.exclude_peers:
            yield (*path, "peer"), "the pinned peer is also in exclude_peers"
        if node.location is None:
            continue
        for section in ("accept", "reject"):
            for index, place in enumerate(getattr(node.location, section)):
                yield from _place(ctx, (*path, "location", section, index), place)


def _place(ctx: Context, path: Path, place: spec.Place) -> Iterator[Finding]:
    if place.continent is None:
        yield (*path, "continent"), "a location entry needs a continent"
    elif continent_code(place.continent) is None:
        yield (*path, "continent"), (
            f"{place.continent!r} is not a continent: use one of "
            "Africa, Antarctica, Asia, Europe, North America, Oceania, South America "
            "(or AF, AN, AS, EU, NA, OC, SA)"
        )
    if place.country is not None and not _COUNTRY.fullmatch(place.country):
        yield (*path, "country"), f"{place.country!r} is not a two-letter ISO 3166 country code"
    if place.city is not None and place.country is None and not ctx.damaged(*path, "country"):
        yield (*path, "city"), "a city needs its country"
    if place.asn is not None and place.asn <= 0:
        yield (*path, "asn"), "asn must be positive"


_HEALTHCHECK_KEYS = {
    HealthCheckKind.COMMAND: {"exec", "script", "response"},
    HealthCheckKind.HTTP: {"endpoint", "response"},
    HealthCheckKind.TCP: {"endpoint"},
}


def check_healthchecks(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    for name, allocation in ensemble.allocations.items():
        check = allocation.healthcheck
        if check is None:
            continue
        path: Path = ("allocations", name, "healthcheck")
        if not ctx.damaged(*path, "type"):  # what applies depends on the type
            yield from _healthcheck_kind(ctx, path, check)
        if check.script is not None and ctx.missing("scripts", check.script):
            yield (*path, "script"), f"no script named {check.script!r}" + _suggest(check.script, ensemble.scripts)
        for key in ("interval", "timeout"):
            value = getattr(check, key)
            if value is not None and value <= 0:
                yield (*path, key), f"{key} must be positive"
        if check.retries is not None and check.retries < 0:
            yield (*path, "retries"), "retries cannot be negative"


def _healthcheck_kind(ctx: Context, path: Path, check: spec.HealthCheckSpec) -> Iterator[Finding]:
    kind = check.type
    given = {
        key
        for key in ("exec", "script", "endpoint", "response")
        if getattr(check, key) not in (None, ())
    }
    for key in sorted(given - _HEALTHCHECK_KEYS[kind]):
        yield (*path, key), f"{key} does not apply to a {kind.value} healthcheck"
    if kind is HealthCheckKind.COMMAND:
        if not check.exec and check.script is None and not ctx.damaged(*path, "script"):
            yield (*path, "exec"), "a command healthcheck needs exec (or a script name)"
        elif check.exec and check.script is not None:
            yield (*path, "script"), "give exec or script, not both"
    elif not check.endpoint:
        example = "http://localhost:8080/health" if kind is HealthCheckKind.HTTP else "8080 or host:8080"
        yield (*path, "endpoint"), f"{kind.value} healthchecks need an endpoint, e.g. {example}"
    elif kind is HealthCheckKind.HTTP and not check.endpoint.startswith(("http://", "https://", "/")):
        yield (*path, "endpoint"), f"{check.endpoint!r} is not an http(s) URL or a path"
    if check.response is not None and check.response.status is not None and kind is not HealthCheckKind.HTTP:
        yield (*path, "response", "status"), "status applies to http healthchecks only"


def check_references(ctx: Context) -> Iterator[Finding]:
    """provision scripts, keys, volumes and supervisor entries name things that exist."""
    ensemble = ctx.ensemble
    for name, allocation in ensemble.allocations.items():
        path: Path = ("allocations", name)
        for index, script in enumerate(allocation.provision):
            if ctx.missing("scripts", script):
                yield (*path, "provision", index), f"no script named {script!r}" + _suggest(script, ensemble.scripts)
        for index, key in enumerate(allocation.keys):
            if isinstance(key, str):
                if ctx.missing("keys", key):
                    yield (*path, "keys", index), f"no key named {key!r}" + _suggest(key, ensemble.keys)
            elif key.type is spec.KeyType.GPG and not key.dest:
                yield (*path, "keys", index, "dest"), "a gpg key needs dest"
        for index, volume in enumerate(allocation.volumes):
            inherited = ensemble.volumes.get(volume.name or "")
            known = not ctx.damaged("volumes", volume.name or "") and not ctx.damaged(*path, "volumes", index, "name")
            if known and not (volume.mountpoint or (inherited and inherited.mountpoint)):
                yield (*path, "volumes", index, "mountpoint"), "a volume needs a mountpoint"
    if ensemble.supervisor is not None:
        yield from _supervisor(ctx, ensemble.supervisor, ("supervisor",))


def _supervisor(ctx: Context, supervisor: spec.Supervisor, path: Path) -> Iterator[Finding]:
    for index, allocation in enumerate(supervisor.allocations):
        if ctx.missing("allocations", allocation):
            yield (*path, "allocations", index), f"no allocation named {allocation!r}" + _suggest(
                allocation, ctx.ensemble.allocations
            )
    for index, child in enumerate(supervisor.children):
        yield from _supervisor(ctx, child, (*path, "children", index))


def check_version(ctx: Context) -> Iterator[Finding]:
    ensemble = ctx.ensemble
    if ensemble.version.casefold() not in ("v1", "ensemblev1"):
        yield ("version",), f"version {ensemble.version!r} is not supported: use V1"


RULES: tuple[Rule, ...] = (
    check_version,
    check_names,
    check_placement,
    check_dependencies,
    check_edges,
    check_executions,
    check_resources,
    check_ports,
    check_nodes,
    check_healthchecks,
    check_references,
)


def semantic_problems(ensemble: spec.Ensemble, broken: frozenset[Path] = frozenset()) -> list[Finding]:
    """Every rule's findings, in rule order, except those at or under a `broken` path
    (values that failed to structure; see `Context`)."""
    context = Context(ensemble, broken)
    findings = [finding for rule in RULES for finding in rule(context)]
    if not broken:
        return findings
    return [(path, message) for path, message in findings if not _under(path, broken)]


def _under(path: Path, broken: frozenset[Path]) -> bool:
    return any(path[: len(b)] == b for b in broken)
