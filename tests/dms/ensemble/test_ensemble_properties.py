"""Property tests: valid ensembles round-trip through YAML; mutated files never crash."""

from __future__ import annotations

import pathlib
import random
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dms.ensemble import EnsembleError, dump_ensemble, load_ensemble
from dms.ensemble import _spec as spec
from dms.ensemble._bounds import MIN_MEMORY
from dms.workload import AllocationRecovery, ExecutorKind, HealthCheckKind, Recovery, WorkloadKind

EXAMPLES = sorted((pathlib.Path(__file__).parents[3] / "examples" / "ensembles").glob("*.yaml"))
NUNET = sorted((pathlib.Path(__file__).parent / "nunet").glob("*.yaml"))

labels = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
words = st.from_regex(r"[A-Za-z0-9_./:-]{1,16}", fullmatch=True)
sizes = st.integers(min_value=MIN_MEMORY, max_value=2**50).map(spec.ByteSize)
cores = st.floats(min_value=0.001, max_value=512, allow_nan=False).map(spec.Cores)
environment = st.lists(
    st.tuples(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), text).map("=".join),
    max_size=3,
).map(tuple)


@st.composite
def resource_specs(draw: st.DrawFn) -> spec.ResourceSpec:
    return spec.ResourceSpec(
        cpu=spec.Cpu(cores=draw(cores), architecture=draw(st.none() | st.sampled_from(["x86_64", "arm64"]))),
        ram=spec.Ram(size=draw(sizes)),
        disk=draw(st.none() | sizes.map(lambda size: spec.Disk(size=size))),
        gpus=tuple(draw(st.lists(st.builds(spec.GpuSpec, vendor=st.none() | words, memory=st.none() | sizes), max_size=2))),
    )


@st.composite
def executions(draw: st.DrawFn, executor: ExecutorKind) -> spec.AllocationExecution:
    if executor is ExecutorKind.DOCKER:
        return spec.DockerExecutionSpec(
            image=draw(words),
            cmd=tuple(draw(st.lists(text, max_size=3))),
            environment=draw(environment),
            working_directory=draw(st.none() | words),
        )
    if executor is ExecutorKind.FIRECRACKER:
        return spec.FirecrackerExecutionSpec(
            kernel_image=draw(words), root_file_system=draw(words), kernel_args=draw(st.none() | text)
        )
    return spec.ProcessExecutionSpec(command=draw(words), args=tuple(draw(st.lists(text, max_size=3))))


healthchecks = st.one_of(
    st.none(),
    st.builds(
        spec.HealthCheckSpec,
        type=st.just(HealthCheckKind.COMMAND),
        exec=st.lists(words, min_size=1, max_size=3).map(tuple),
        response=st.none() | st.builds(spec.HealthResponse, value=text),
        interval=st.none() | st.floats(min_value=0.1, max_value=600).map(spec.Seconds),
        retries=st.none() | st.integers(0, 10),
    ),
    st.builds(
        spec.HealthCheckSpec,
        type=st.just(HealthCheckKind.TCP),
        endpoint=st.integers(1, 65535).map(str),
        timeout=st.none() | st.floats(min_value=0.1, max_value=60).map(spec.Seconds),
    ),
)
places = st.builds(
    spec.Place,
    continent=st.sampled_from(["EU", "Europe", "NA", "asia"]),
    country=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
    asn=st.none() | st.integers(1, 2**32),
)


@st.composite
def ensembles(draw: st.DrawFn) -> spec.Ensemble:
    names = draw(st.lists(labels, min_size=1, max_size=6, unique=True))
    templates = draw(st.dictionaries(labels, resource_specs(), max_size=2))
    node_count = draw(st.integers(1, len(names)))
    node_names = draw(st.lists(labels, min_size=node_count, max_size=node_count, unique=True))
    members: dict[str, list[str]] = {node: [] for node in node_names}
    for index, name in enumerate(names):
        members[node_names[index % node_count]].append(name)
    allocations = {}
    for placed in members.values():
        for position, name in enumerate(placed):
            executor = draw(st.sampled_from(ExecutorKind))
            inline: st.SearchStrategy[spec.ResourceSpec | str] = resource_specs()
            named = st.sampled_from(sorted(templates)) if templates else inline
            resources = draw(inline | named)
            allocations[name] = spec.Allocation(
                executor=executor,
                execution=draw(executions(executor)),
                resources=resources,
                type=draw(st.sampled_from(WorkloadKind)),
                depends_on=tuple(draw(st.lists(st.sampled_from(placed[:position]), unique=True)) if position else ()),
                healthcheck=draw(healthchecks),
                failure_recovery=draw(st.sampled_from(AllocationRecovery)),
            )
    nodes = {}
    for node, placed in members.items():
        publics = draw(st.lists(st.integers(1025, 65535), unique=True, max_size=2))
        nodes[node] = spec.EnsembleNode(
            allocations=tuple(placed),
            ports=tuple(spec.Port(private=1000 + i, allocation=placed[0], public=p) for i, p in enumerate(publics)),
            location=draw(st.none() | st.builds(spec.LocationSpec, accept=st.lists(places, max_size=2).map(tuple))),
            peer=draw(st.none() | words),
            redundancy=draw(st.integers(0, 3)),
            failure_recovery=draw(st.sampled_from(Recovery)),
        )
    edges: tuple[spec.EdgeConstraint, ...] = ()
    if node_count > 1:
        pairs = st.lists(st.sampled_from(node_names), min_size=2, max_size=2, unique=True).map(tuple)
        edges = tuple(
            draw(
                st.lists(
                    st.builds(
                        spec.EdgeConstraint,
                        edges=pairs,
                        rtt=st.none() | st.floats(min_value=0, max_value=1e4).map(spec.Milliseconds),
                        bw=st.none() | st.integers(0, 10**12).map(spec.BitsPerSecond),
                        symmetric=st.booleans(),
                    ),
                    max_size=3,
                )
            )
        )
    return spec.Ensemble(
        allocations=allocations,
        nodes=nodes,
        edge_constraints=edges,
        resources=templates,
        exclude_peers=tuple(draw(st.lists(words.map("excluded-".__add__), max_size=2))),
        metadata=draw(st.dictionaries(words, st.integers() | text, max_size=2)),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ensembles())
def test_valid_ensembles_round_trip_through_yaml(ensemble: spec.Ensemble) -> None:
    loaded = load_ensemble(dump_ensemble(ensemble))
    assert loaded == ensemble
    assert dump_ensemble(loaded) == dump_ensemble(ensemble)


def _mutate(data: Any, rng: random.Random, replacement: Any) -> Any:
    """Replace one randomly chosen value somewhere in `data`."""
    if isinstance(data, dict) and data and rng.random() < 0.8:
        key = rng.choice(list(data))
        return {**data, key: _mutate(data[key], rng, replacement)}
    if isinstance(data, list) and data and rng.random() < 0.8:
        index = rng.randrange(len(data))
        return [*data[:index], _mutate(data[index], rng, replacement), *data[index + 1 :]]
    return replacement


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(EXAMPLES + NUNET), st.randoms(use_true_random=False), junk)
def test_mutated_values_never_crash_the_loader(path: pathlib.Path, rng: random.Random, replacement: Any) -> None:
    data = _mutate(yaml.safe_load(path.read_text()), rng, replacement)
    try:
        load_ensemble(yaml.safe_dump(data), file=path.name)
    except EnsembleError as exc:
        assert exc.problems and all(p.file == path.name for p in exc.problems)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(EXAMPLES + NUNET), st.randoms(use_true_random=False), st.text(max_size=8))
def test_mutated_text_never_crashes_the_loader(path: pathlib.Path, rng: random.Random, insert: str) -> None:
    source = path.read_text()
    start = rng.randrange(len(source))
    end = min(len(source), start + rng.randrange(20))
    try:
        load_ensemble(source[:start] + insert + source[end:], file=path.name)
    except EnsembleError as exc:
        assert exc.problems
