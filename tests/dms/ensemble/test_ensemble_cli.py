"""`dms validate`: output and exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib

from click.testing import CliRunner

from dms.cli import main

HERE = pathlib.Path(__file__).parent
EXAMPLES = pathlib.Path(__file__).parents[3] / "examples" / "ensembles"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    return result.exit_code, result.output


def test_valid_file_prints_a_summary_and_exits_0() -> None:
    code, output = run(str(EXAMPLES / "web-db.yaml"))
    assert code == 0
    assert "valid: 2 allocations, 1 node, 0 edges; total cpu 1.5, ram 1536Mi, disk 11Gi" in output


def test_invalid_file_prints_every_problem_and_exits_1() -> None:
    code, output = run(str(EXAMPLES / "hello.yaml"), str(HERE / "broken" / "bad-ports.yaml"))
    assert code == 1
    assert "invalid, 5 problems" in output
    assert "bad-ports.yaml:10: nodes.n1.ports[1].public: public port 80" in output


def test_unreadable_file_exits_2(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    code, output = run(str(bad), str(HERE / "broken" / "bad-ports.yaml"))
    assert code == 2
    assert "unreadable" in output and "not valid YAML" in output
    code, output = run(str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in output


def test_json_output_lists_problems_per_file() -> None:
    code, output = run("--json", str(HERE / "broken" / "dependency-cycle.yaml"), str(EXAMPLES / "hello.yaml"))
    assert code == 1
    broken, hello = json.loads(output)
    assert broken["status"] == "invalid"
    assert broken["problems"] == [
        {
            "file": str(HERE / "broken" / "dependency-cycle.yaml"),
            "path": "allocations.a.depends_on",
            "line": 3,
            "message": "dependency cycle: a -> b -> c -> a",
        }
    ]
    assert hello["status"] == "valid" and hello["summary"]["allocations"] == 1


def test_a_directory_is_an_unreadable_result_reported_with_the_others(tmp_path: pathlib.Path) -> None:
    code, output = run(str(tmp_path), str(EXAMPLES / "hello.yaml"))
    assert code == 2
    assert f"{tmp_path}: unreadable, 1 problem" in output and "cannot read" in output
    assert "hello.yaml: valid" in output
    code, output = run("--json", str(tmp_path), str(EXAMPLES / "hello.yaml"))
    directory, hello = json.loads(output)
    assert code == 2
    assert (directory["file"], directory["status"]) == (str(tmp_path), "unreadable")
    assert hello["status"] == "valid"


def test_every_problem_of_a_file_is_reported_in_one_run() -> None:
    code, output = run("--json", str(HERE / "broken" / "structural-and-semantic-together.yaml"))
    [report] = json.loads(output)
    assert code == 1
    paths = {problem["path"] for problem in report["problems"]}
    assert {"allocations.web.resources.cpu.cores", "allocations.web.resources.ram.size"} <= paths
    assert "edge_constraints[0].edges[1]" in paths


def test_a_file_with_only_warnings_is_valid_shows_them_and_exits_0() -> None:
    path = HERE / "nunet-acceptance" / "anchored-service.yaml"
    code, output = run(str(path))
    assert code == 0
    assert output.splitlines() == [
        f"{path}: valid, 1 warning: 1 allocation, 1 node, 0 edges; total cpu 1, ram 512Mi, disk 512Mi, 0 gpus",
        f"  {path}:29: allocations.web.healthcheck.dns_name: warning: unknown key 'dns_name' is ignored; "
        "valid keys are type, exec, script, endpoint, response, interval, timeout, retries",
    ]


def test_an_invalid_file_lists_its_errors_then_its_warnings() -> None:
    path = HERE / "broken" / "unknown-keys.yaml"
    code, output = run(str(path))
    assert code == 1
    lines = output.splitlines()
    assert lines[0] == f"{path}: invalid, 3 problems, 1 warning"
    assert lines[-1].startswith(f"  {path}:3: colour: warning: unknown key 'colour' is ignored")
    assert all("warning" not in line for line in lines[1:-1])


def test_json_carries_warnings_apart_from_problems() -> None:
    path = HERE / "broken" / "unknown-keys.yaml"
    code, output = run("--json", str(path), str(HERE / "nunet-acceptance" / "anchored-on-two-nodes.yaml"))
    assert code == 1
    broken, anchored = json.loads(output)
    assert [p["path"] for p in broken["problems"]] == [
        "allocations.web.heathcheck",
        "nodes.n1.prots",
        "edge_constraints[0].rt",
    ]
    [warning] = broken["warnings"]
    assert (warning["file"], warning["path"], warning["line"]) == (str(path), "colour", 3)
    assert warning["message"].startswith("unknown key 'colour' is ignored")
    assert (anchored["status"], anchored["problems"], anchored["warnings"]) == ("valid", [], [])


def test_dash_h_is_help_for_the_group_and_its_commands() -> None:
    for args in (["-h"], ["validate", "-h"], ["node", "-h"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, args
        assert result.output.startswith("Usage: "), args
    assert CliRunner().invoke(main, ["-h"]).output == CliRunner().invoke(main, ["--help"]).output


def test_version_is_the_pydms_distribution_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"dms, version {importlib.metadata.version('pydms')}\n"
