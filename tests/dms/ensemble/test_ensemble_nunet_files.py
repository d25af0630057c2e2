"""NuNet's own ensembles load: anchor-only templates, keys NuNet ignores, bare GiB sizes,
and executors NuNet has that dms does not yet."""

from __future__ import annotations

import pathlib

import pytest

from dms.ensemble import EnsembleInvalid, format_path, load_ensemble, load_ensemble_file
from dms.ensemble._load import load_ensemble_file_with_warnings, load_ensemble_with_warnings

HERE = pathlib.Path(__file__).parent
ACCEPTANCE = HERE / "nunet-acceptance"

ALLOCATION = "{executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}}"


def warnings_of(text: str) -> list[tuple[str, int | None, str]]:
    loaded = load_ensemble_with_warnings(text, file="f.yaml")
    return [(format_path(w.path), w.line, w.message) for w in loaded.warnings]


def test_nunet_anchored_service_loads_with_only_the_ignored_healthcheck_key_warned() -> None:
    loaded = load_ensemble_file_with_warnings(ACCEPTANCE / "anchored-service.yaml")
    [warning] = loaded.warnings
    # the alias's key is reported at the line it is written: inside the template
    assert (format_path(warning.path), warning.line) == ("allocations.web.healthcheck.dns_name", 29)
    assert warning.message.startswith("unknown key 'dns_name' is ignored; valid keys are type, exec")
    web = loaded.ensemble.allocations["web"]
    assert web.healthcheck is not None and web.healthcheck.exec == ("nginx", "-t")


def test_nunet_template_aliased_by_two_allocations_gives_two_equal_allocations() -> None:
    loaded = load_ensemble_file_with_warnings(ACCEPTANCE / "anchored-on-two-nodes.yaml")
    assert loaded.warnings == ()
    allocations = loaded.ensemble.allocations
    assert set(allocations) == {"web-a", "web-b"}  # the template is not an allocation
    assert allocations["web-a"] == allocations["web-b"]


def test_bare_sizes_are_gib_so_half_a_gib_is_512_mib() -> None:
    resources = load_ensemble_file(ACCEPTANCE / "anchored-service.yaml").resources_of("web")
    assert resources.ram.size == resources.disk.size == 512 * 1024**2  # type: ignore[union-attr]
    short = load_ensemble(
        "allocations: {a: {executor: docker, resources: {cpu: 1, ram: 2, disk: 0.5}, execution: {image: x}}}\n"
        "nodes: {n: {allocations: [a]}}\n"
    ).resources_of("a")
    assert (short.ram.size, short.disk.size) == (2 * 1024**3, 512 * 1024**2)  # type: ignore[union-attr]


def test_sizes_with_units_are_read_as_written() -> None:
    resources = load_ensemble(
        "allocations: {a: {executor: docker, resources: {cpu: 1, ram: 512Mi, disk: 2G}, execution: {image: x}}}\n"
        "nodes: {n: {allocations: [a]}}\n"
    ).resources_of("a")
    assert (resources.ram.size, resources.disk.size) == (512 * 1024**2, 2 * 10**9)  # type: ignore[union-attr]


def test_a_top_level_key_holding_an_anchor_used_elsewhere_is_a_silent_template() -> None:
    text = f"base: &base {ALLOCATION}\nallocations: {{web: *base}}\nnodes: {{n: {{allocations: [web]}}}}\n"
    assert warnings_of(text) == []


def test_a_template_used_through_a_merge_key_is_a_template_too() -> None:
    text = (
        f"base: &base {ALLOCATION}\n"
        "allocations:\n  web:\n    <<: *base\n    dns_name: www\n"
        "nodes: {n: {allocations: [web]}}\n"
    )
    assert warnings_of(text) == []
    assert load_ensemble(text).allocations["web"].dns_name == "www"


def test_a_template_close_to_a_section_name_is_still_a_template() -> None:
    text = (
        "resource: &small {cpu: 1, ram: 1}\n"
        "allocations: {web: {executor: docker, resources: *small, execution: {image: x}}}\n"
        "nodes: {n: {allocations: [web]}}\n"
    )
    assert warnings_of(text) == []


def test_an_anchor_nothing_uses_is_an_unknown_key() -> None:
    text = f"spare: &spare {ALLOCATION}\nallocations: {{web: {ALLOCATION}}}\nnodes: {{n: {{allocations: [web]}}}}\n"
    [(path, line, message)] = warnings_of(text)
    assert (path, line) == ("spare", 1) and message.startswith("unknown key 'spare' is ignored")


def test_a_top_level_alias_of_an_anchor_defined_elsewhere_is_an_unknown_key() -> None:
    text = f"allocations: {{web: &web {ALLOCATION}}}\ncopy: *web\nnodes: {{n: {{allocations: [web]}}}}\n"
    assert [path for path, _, _ in warnings_of(text)] == ["copy"]


def test_an_anchored_known_section_stays_a_section() -> None:
    text = (
        "resources: &templates {small: {cpu: 1, ram: 1}}\n"
        "metadata: {copy: *templates}\n"
        "allocations: {web: {executor: docker, resources: small, execution: {image: x}}}\n"
        "nodes: {n: {allocations: [web]}}\n"
    )
    assert load_ensemble(text).resources_of("web").cpu.cores == 1


def test_unknown_keys_far_from_known_ones_are_warnings_with_paths_and_lines() -> None:
    text = (
        "version: V1\n"
        "colour: blue\n"
        "allocations:\n"
        "  web:\n"
        "    executor: docker\n"
        "    resources: {cpu: 1, ram: 1, gpus: [{vendor: nvidia, pcie: 4}]}\n"
        "    execution: {image: x, labels: {tier: web}}\n"
        "nodes:\n"
        "  n: {allocations: [web], ports: [{private: 80, allocation: web, protocol: tcp}]}\n"
    )
    assert [(path, line) for path, line, _ in warnings_of(text)] == [
        ("colour", 2),
        ("allocations.web.resources.gpus[0].pcie", 6),
        ("allocations.web.execution.labels", 7),
        ("nodes.n.ports[0].protocol", 9),
    ]


def test_ignored_keys_do_not_change_what_the_file_means() -> None:
    plain = f"allocations: {{web: {ALLOCATION}}}\nnodes: {{n: {{allocations: [web]}}}}\n"
    noisy = (
        "owner: ops\n"
        "allocations: {web: {executor: docker, note: hi, resources: {cpu: {cores: 1, socket: 0}, ram: 1},"
        " execution: {image: x, labels: {a: b}}}}\n"
        "nodes: {n: {allocations: [web], tier: gold}}\n"
    )
    assert len(load_ensemble_with_warnings(noisy).warnings) == 5
    assert load_ensemble(noisy) == load_ensemble(plain)


def test_load_ensemble_drops_warnings_and_its_with_warnings_form_keeps_them() -> None:
    text = f"colour: blue\nallocations: {{web: {ALLOCATION}}}\nnodes: {{n: {{allocations: [web]}}}}\n"
    loaded = load_ensemble_with_warnings(text)
    assert load_ensemble(text) == loaded.ensemble
    assert [format_path(w.path) for w in loaded.warnings] == ["colour"]


def test_a_misspelt_key_stays_an_error_and_the_warnings_travel_with_it() -> None:
    text = f"colour: blue\nallocations: {{web: {ALLOCATION}}}\nnodes: {{n: {{allocations: [web], prots: []}}}}\n"
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    [problem] = caught.value.problems
    assert (format_path(problem.path), problem.message) == ("nodes.n.prots", "unknown key 'prots': did you mean 'ports'?")
    assert [format_path(w.path) for w in caught.value.warnings] == ["colour"]
    assert "colour" not in str(caught.value)  # the exception's message is its errors


def test_a_key_of_another_executors_execution_is_an_error_not_a_warning() -> None:
    text = (
        "allocations: {vm: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x, root_file_system: r}}}\n"
        "nodes: {n: {allocations: [vm]}}\n"
    )
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    [problem] = caught.value.problems
    assert format_path(problem.path) == "allocations.vm.execution.root_file_system"
    assert problem.message == "unknown key 'root_file_system': it is for firecracker executions, not docker"


CONTAINERD = "containerd executor is not supported yet; use docker, firecracker or process"


def test_containerd_is_refused_by_name_where_it_is_written() -> None:
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble_file(HERE / "broken" / "containerd-executor.yaml")
    assert [(format_path(p.path), p.line, p.message) for p in caught.value.problems] == [
        ("allocations.hello.executor", 9, CONTAINERD),
        ("allocations.hello.execution.type", 19, CONTAINERD),
    ]


def test_containerd_as_the_only_executor_name_is_refused_by_name() -> None:
    text = (
        "allocations: {a: {executor: containerd, resources: {cpu: 1, ram: 1}, execution: {image: x}}}\n"
        "nodes: {n: {allocations: [a]}}\n"
    )
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    assert {p.message for p in caught.value.problems} == {CONTAINERD}


def test_other_unknown_executors_are_still_not_one_of_the_choices() -> None:
    text = (
        "allocations: {a: {executor: podman, resources: {cpu: 1, ram: 1}, execution: {type: podman, image: x}}}\n"
        "nodes: {n: {allocations: [a]}}\n"
    )
    with pytest.raises(EnsembleInvalid) as caught:
        load_ensemble(text)
    assert {p.message for p in caught.value.problems} == {
        "the string 'podman' is not one of: docker, firecracker, process"
    }


def test_problems_under_older_spellings_point_at_the_line_the_file_wrote() -> None:
    text = (
        "allocations:\n"
        "  web:\n"
        "    executor: docker\n"
        "    resources: {cpu: 1, ram: 1}\n"
        "    execution: {image: x}\n"
        "    volume:\n"
        "      name: data\n"
        "      mount_destination: /data\n"
        "      src: /srv/data\n"
        "    health_check:\n"
        "      type: tcp\n"
        "      endpoint: '80'\n"
        "      port_name: web\n"
        "nodes: {n: {allocations: [web]}}\n"
    )
    assert [(path, line) for path, line, _ in warnings_of(text)] == [
        ("allocations.web.volumes[0].src", 9),
        ("allocations.web.healthcheck.port_name", 13),
    ]
