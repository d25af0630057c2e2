"""Loading ensemble files: examples, NuNet's format, and one broken file per rule."""

from __future__ import annotations

import pathlib

import pytest

from dms.ensemble import (
    EnsembleInvalid,
    EnsembleUnreadable,
    dump_ensemble,
    format_path,
    load_ensemble,
    load_ensemble_file,
)
from dms.ensemble._spec import DockerExecutionSpec
from dms.workload import ExecutorKind

HERE = pathlib.Path(__file__).parent
EXAMPLES = sorted((HERE.parents[2] / "examples" / "ensembles").glob("*.yaml"))
NUNET = sorted((HERE / "nunet").glob("*.yaml")) + sorted((HERE / "nunet-acceptance").glob("*.yaml"))
BROKEN = sorted((HERE / "broken").glob("*.yaml"))


def expected_paths(path: pathlib.Path, header: str = "# expect: ") -> set[str]:
    """The paths listed on the file's `# expect: ` (errors) or `# warn: ` line."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect: "), f"{path.name} must start with '# expect: '"
    listed = [line.removeprefix(header) for line in lines[:2] if line.startswith(header)]
    return {item.strip() for item in listed[0].split(",")} if listed else set()


def test_the_examples_cover_what_the_issue_asks_for() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"hello", "web-db", "multi-region", "redundant", "firecracker"} <= names


@pytest.mark.parametrize("path", EXAMPLES + NUNET, ids=lambda p: p.name)
def test_file_loads_and_survives_a_dump_round_trip(path: pathlib.Path) -> None:
    ensemble = load_ensemble_file(path)
    assert load_ensemble(dump_ensemble(ensemble)) == ensemble


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_file_reports_exactly_its_expected_paths(path: pathlib.Path) -> None:
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble_file(path)
    problems = caught.value.problems
    paths = [format_path(p.path) for p in problems]
    assert set(paths) == expected_paths(path)
    assert len(paths) == len(set(paths)), "a problem was reported twice"
    assert all(p.file == str(path) and p.line is not None for p in problems)
    assert {format_path(w.path) for w in caught.value.warnings} == expected_paths(path, "# warn: ")


def test_problem_lines_point_at_the_offending_key() -> None:
    text = "allocations:\n  web:\n    executor: docker\n    resources: {cpu: 1, ram: 1}\n" \
        "    execution: {image: x}\n    heathcheck: {}\nnodes: {n: {allocations: [web]}}\n"
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text, file="f.yaml")
    [problem] = caught.value.problems
    assert (problem.line, format_path(problem.path)) == (6, "allocations.web.heathcheck")
    assert "did you mean 'healthcheck'?" in problem.message
    assert str(problem).startswith("f.yaml:6: allocations.web.heathcheck: ")


def test_nunet_sizes_and_spellings_are_normalized() -> None:
    ensemble = load_ensemble_file(HERE / "nunet" / "full-reference.yaml")
    standard = ensemble.resources["standard"]
    assert standard.ram.size == 4 * 1024**3  # bare sizes are GiB
    assert standard.gpus[0].memory == 10 * 1024**3  # `vram` is read as memory
    assert standard.cpu.clock_speed == 2.4e9  # `clockspeed` is read as clock_speed
    assert ensemble.nodes["node1"].location is not None
    assert ensemble.nodes["node1"].location.accept[0].continent == "Europe"  # from `region`
    assert ensemble.edge_constraints[0].rtt == 100.0  # bare rtt is ms
    worker1 = ensemble.allocations["worker1"]
    assert worker1.healthcheck is not None and worker1.healthcheck.script == "healthcheck"


def test_dnsname_is_read_only_when_dns_name_is_absent() -> None:
    ensemble = load_ensemble_file(HERE / "nunet" / "storage-two-nodes.yaml")
    assert ensemble.allocations["webAlloc1"].dns_name == "web-alloc1"
    volume = ensemble.allocations["webAlloc2"].volumes[0]
    assert (volume.type, volume.mountpoint) == ("glusterfs", "/srv/data")


def test_docker_args_are_the_command() -> None:
    ensemble = load_ensemble_file(HERE / "nunet" / "tasks-and-recovery.yaml")
    execution = ensemble.allocations["task-one"].execution
    assert isinstance(execution, DockerExecutionSpec)
    assert execution.cmd == ("sh", "-c", "echo 'Task one' && sleep 5")


def test_execution_type_defaults_to_the_executor() -> None:
    ensemble = load_ensemble_file(EXAMPLES[0].parent / "firecracker.yaml")
    assert ensemble.allocations["vm"].execution.type is ExecutorKind.FIRECRACKER


def test_shape_and_semantic_problems_are_reported_together() -> None:
    text = """
allocations:
  web: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}, depends_on: [db]}
  db: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}, depends_on: [web]}
  broken: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: [x]}}
nodes:
  n1: {allocations: [web, db, broken], ports: [{private: 80, public: 80, allocation: web}]}
"""
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    assert {format_path(p.path) for p in caught.value.problems} == {
        "allocations.broken.execution.image",
        "allocations.web.depends_on",
        "nodes.n1.ports[0].public",
    }  # and `broken` on n1 is not reported as an unknown allocation


def test_a_value_that_failed_to_parse_is_not_judged_again_but_its_siblings_are() -> None:
    text = """
allocations:
  web:
    executor: docker
    resources: {cpu: 500x, ram: -1Gi, disk: lots}
    execution: {image: nginx}
nodes:
  n1: {allocations: [web]}
edge_constraints:
  - {edges: [n1, n2]}
"""
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    assert [(format_path(p.path), p.message.split(":")[0]) for p in caught.value.problems] == [
        ("allocations.web.resources.cpu.cores", "'500x' is not cpu cores such as 0.5 or 2, or millicores such as 500m"),
        ("allocations.web.resources.disk.size", "'lots' is not a size such as 512Mi, 2G, 1.5GiB or 1024B, or a bare number of GiB"),
        ("allocations.web.resources.ram.size", "ram size -1Gi is below the minimum of 1Mi"),
        ("edge_constraints[0].edges[1]", "no node named 'n2'; known"),
    ]


def test_broken_entries_keep_their_names_and_list_positions() -> None:
    text = """
allocations:
  web: 5
  api: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}}
nodes:
  n1: {allocations: [web, api], ports: [{private: x, allocation: api}, {private: 80, allocation: ghost}]}
edge_constraints:
  - {edges: [n1], rtt: -1}
  - {edges: [n1, n9]}
"""
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    assert [format_path(p.path) for p in caught.value.problems] == [
        "allocations.web",  # and not "no allocation named 'web'" on n1
        "nodes.n1.ports[0].private",
        "nodes.n1.ports[1].allocation",
        "edge_constraints[0].edges",
        "edge_constraints[0].rtt",
        "edge_constraints[1].edges[1]",  # index kept although edge 0 is broken
    ]


def test_a_broken_healthcheck_type_holds_back_only_the_type_dependent_rules() -> None:
    text = """
allocations:
  web:
    executor: docker
    resources: {cpu: 1, ram: 1}
    execution: {image: x}
    healthcheck: {type: htp, endpoint: "80", script: nope, retries: -1}
nodes: {n1: {allocations: [web]}}
"""
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    assert [format_path(p.path) for p in caught.value.problems] == [
        "allocations.web.healthcheck.retries",
        "allocations.web.healthcheck.script",
        "allocations.web.healthcheck.type",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty document"),
        ("- a\n- b\n", "not a mapping"),
        ("allocations: [a]\n", "expected a mapping of names"),
    ],
)
def test_documents_that_are_not_ensembles_are_invalid(text: str, message: str) -> None:
    with pytest.raises(EnsembleInvalid, match=message):
        load_ensemble(text)


def test_missing_file_is_unreadable(tmp_path: pathlib.Path) -> None:
    with pytest.raises(EnsembleUnreadable, match="cannot read"):
        load_ensemble_file(tmp_path / "absent.yaml")
