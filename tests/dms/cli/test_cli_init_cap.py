"""`dms init`, `dms node run --data-dir`, `dms node status | peers | resources` and
`dms cap`, each a process of its own, on one node made by `dms init` (per module)."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from dms.cli import main

from .conftest import DMS, UCAN, environment, free_port

PROVIDE = "cpu=1,ram=512Mi,disk=1Gi"


@attrs.define
class OwnNode:
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    listening: dict[str, Any]

    def dms(self, *args: str) -> Result:
        """A client command, run in this process (the same code as the console script,
        without a second of start-up per call)."""
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str] | Result) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnNode]:
    home = tmp_path_factory.mktemp("own")
    env = environment(home)
    data = home / "node"
    made = run(env, str(DMS), "init", "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    config = data / "config.yaml"
    text = config.read_text()
    text = text.replace("listen: tcp://127.0.0.1:7000", f"listen: tcp://127.0.0.1:{free_port()}")
    text = text.replace("provide: null", f"provide: {PROVIDE}")
    config.write_text(text)
    stderr = (home / "node.stderr").open("w")
    process = subprocess.Popen([str(DMS), "node", "run", "--data-dir", str(data), "--json",
                                "--location", "EU/DE/Berlin", "--exit-with-stdin"],
                               env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=stderr, text=True)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        raise AssertionError(f"the node did not start: {(home / 'node.stderr').read_text()}")
    node = OwnNode(data, {**env, "DMS_DATA_DIR": str(data)}, process, json.loads(line))
    try:
        yield node
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_init_again_finds_everything_and_changes_nothing(own: OwnNode) -> None:
    before = (own.data_dir / "config.yaml").read_text()
    again = own.dms("init", "--json")
    assert again.exit_code == 0, again.stderr
    assert {step["action"] for step in json.loads(again.stdout)["steps"]} == {"found"}
    assert (own.data_dir / "config.yaml").read_text() == before


def test_node_run_takes_the_config_and_its_flags_override_it(own: OwnNode) -> None:
    offers = own.listening["offers"]
    assert own.listening["address"] == yaml_listen(own.data_dir)
    assert offers["millicores"] == 1000 and offers["location"] == "EU/DE/Berlin"


def yaml_listen(data_dir: Path) -> str:
    line = next(line for line in (data_dir / "config.yaml").read_text().splitlines()
                if line.startswith("listen:"))
    return line.split(" ", 1)[1]


def test_the_owner_sees_status_peers_and_resources_with_no_flags(own: OwnNode) -> None:
    status = run(own.env, str(DMS), "node", "status", "--json")  # the console script, once
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["did"] == own.listening["did"] and "provider" in info["roles"]
    assert info["uptime"] > 0 and info["deployments"] == 0
    peers = own.dms("peers", "--json")
    assert peers.exit_code == 0, peers.stderr
    assert all(row["connected"] for row in json.loads(peers.stdout)["peers"])
    resources = own.dms("resources", "--json")
    assert resources.exit_code == 0, resources.stderr
    offer = json.loads(resources.stdout)
    assert offer["location"]["city"] == "Berlin" and offer["executors"] == ["process"]
    assert offer["offered"]["ram"] == 512 << 20 and offer["free"] == offer["offered"]
    text = own.dms("resources")
    assert "EU/DE/Berlin" in text.stdout and "512Mi" in text.stdout


def test_a_cap_grant_lets_another_key_in_for_that_command_only(own: OwnNode,
                                                               tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = run({**own.env, "UCAN_KEYSTORE": str(keys)}, str(UCAN), "key", "new", "friend",
               "--json")
    assert made.returncode == 0, made.stderr
    friend = json.loads(made.stdout)["did"]
    grant_file = tmp_path / "friend.ucan"
    granted = own.dms("cap", "grant", "--to", friend, "--cmd", "/dms/node/info", "--exp", "1h",
                      "-o", str(grant_file), "--json")
    assert granted.exit_code == 0, granted.stderr
    assert json.loads(granted.stdout)["iss"] == own.listening["did"]
    as_friend = ("--node", own.listening["address"], "--as", "friend", "--keystore", str(keys),
                 "--proof", str(grant_file))
    status = own.dms("node", "status", *as_friend)
    assert status.exit_code == 0, status.stderr
    assert own.listening["did"] in status.stdout
    refused = own.dms("resources", *as_friend)
    assert refused.exit_code == 1
    line = one_line_error(refused)
    assert "InvalidClaim" in line
    assert f"dms cap grant --to {friend} --cmd /dms/node/resources" in line
    assert "the grants you presented cover /dms/node/info, not /dms/node/resources" in line


def test_cap_anchor_changes_are_kept_and_the_running_node_is_named(
        own: OwnNode) -> None:
    org = SigningKeyDid.make()
    added = own.dms("cap", "anchor", "add", org)
    assert added.exit_code == 0, added.stderr
    assert f"(pid {own.process.pid}) takes this in" in added.stderr
    listed = own.dms("cap", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout)["anchors"] == [org]
    removed = own.dms("cap", "anchor", "remove", org)
    assert removed.exit_code == 0, removed.stderr
    missing = own.dms("cap", "anchor", "remove", org)
    assert missing.exit_code == 1 and "is not an anchor" in one_line_error(missing)


def test_a_grant_of_no_dms_behavior_is_issued_with_a_warning(own: OwnNode,
                                                              tmp_path: Path) -> None:
    typo = own.dms("cap", "grant", "--to", SigningKeyDid.make(), "--cmd", "/dms/node/deploy",
                   "-o", str(tmp_path / "typo.ucan"))
    assert typo.exit_code == 0
    assert "warning: --cmd /dms/node/deploy grants none of a dms node's behaviors" in typo.stderr
    assert f"dms cap add {tmp_path / 'typo.ucan'}" in typo.stdout  # the path, as given
    fine = own.dms("cap", "grant", "--to", SigningKeyDid.make(), "--cmd", "/dms/node",
                   "-o", str(tmp_path / "fine.ucan"))
    assert fine.exit_code == 0 and "warning" not in fine.stderr


def test_cap_revoke_is_kept_in_the_node_store(own: OwnNode, tmp_path: Path) -> None:
    granted = own.dms("cap", "grant", "--to", SigningKeyDid.make(), "--cmd", "/dms/node/ping",
                      "-o", str(tmp_path / "g.ucan"), "--json")
    cid = json.loads(granted.stdout)["cid"]
    revoked = own.dms("cap", "revoke", cid, "--json")
    assert revoked.exit_code == 0, revoked.stderr
    listed = json.loads(own.dms("cap", "list", "--json").stdout)
    assert cid in {entry["revokes"] for entry in listed["revocations"]}


@pytest.mark.parametrize(("argv", "said"), [
    (("cap", "anchor", "add", "did:key:nope"), "is not the did:key of an Ed25519 key"),
    (("cap", "grant", "--to", "did:key:nope", "--cmd", "/dms"), "--to:"),
    (("cap", "grant", "--to", "OWN", "--cmd", "dms"), "--cmd: command 'dms' must begin"),
    (("cap", "grant", "--to", "OWN", "--cmd", "/dms", "--policy", "[1"), "--policy: not JSON"),
    (("cap", "grant", "--to", "OWN", "--cmd", "/dms", "--exp", "soon"), "--exp:"),
    (("cap", "revoke", "not-a-cid"), "CID:"),
    (("cap", "add", "/nonexistent.ucan"), "/nonexistent.ucan:"),
])
def test_cap_mistakes_are_one_line_and_exit_2(own: OwnNode, argv: tuple[str, ...],
                                              said: str) -> None:
    argv = tuple(own.listening["did"] if arg == "OWN" else arg for arg in argv)
    result = own.dms(*argv)
    assert result.exit_code == 2
    assert said in one_line_error(result)


def test_a_grant_to_another_node_is_not_held_here(own: OwnNode, tmp_path: Path) -> None:
    granted = own.dms("cap", "grant", "--to", SigningKeyDid.make(), "--cmd", "/dms/deployment",
                      "-o", str(tmp_path / "theirs.ucan"))
    assert granted.exit_code == 0, granted.stderr
    refused = own.dms("cap", "add", str(tmp_path / "theirs.ucan"))
    assert refused.exit_code == 2 and "not to this node" in one_line_error(refused)


def test_a_bad_config_stops_init_and_run_naming_the_field(tmp_path: Path) -> None:
    env = environment(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.yaml").write_text("price: -1\n")
    for argv in (("init",), ("node", "run")):
        result = run(env, str(DMS), *argv, "--data-dir", str(tmp_path / "bad"))
        assert result.returncode == 2
        line = one_line_error(result)
        assert "config.yaml: $.price: must be a number >= 0" in line
    assert not (tmp_path / "bad" / "keys").exists()


def test_node_run_on_a_directory_without_config_says_to_init(tmp_path: Path) -> None:
    result = run(environment(tmp_path), str(DMS), "node", "run", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "dms init --data-dir" in one_line_error(result)


def test_the_node_logs_json_lines_on_stderr(own: OwnNode) -> None:
    log = own.data_dir.parent / "node.stderr"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(r["logger"] == "dms.provider" and r["level"] == "INFO" for r in records)


class SigningKeyDid:
    @staticmethod
    def make() -> str:
        from ucan import SigningKey
        return SigningKey.generate().did



def test_keep_workloads_without_a_state_directory_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["node", "run", "--ephemeral", "--keep-workloads"],
                                env=environment(tmp_path), catch_exceptions=False)
    assert result.exit_code == 2
    assert "--keep-workloads needs a state directory" in one_line_error(result)


def test_a_bad_location_flag_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["node", "run", "--ephemeral", "--location", "a/b/c/d"],
                                env=environment(tmp_path), catch_exceptions=False)
    assert result.exit_code == 2
    assert "--location: 'a/b/c/d' has 4 parts" in one_line_error(result)


def test_ended_kept_below_one_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["node", "run", "--ephemeral", "--ended-kept", "0"],
                                env=environment(tmp_path), catch_exceptions=False)
    assert result.exit_code == 2
    assert one_line_error(result) == ("Error: --ended-kept must be a whole number of "
                                      "deployments >= 1, got 0")


@pytest.mark.parametrize(("config", "flags", "kept"), [
    ("", (), 1000), ("ended_kept: 7\n", (), 7), ("ended_kept: 7\n", ("--ended-kept", "3"), 3),
])
def test_ended_kept_comes_from_the_flag_over_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, flags: tuple[str, ...],
        kept: int) -> None:
    from dms.node import _command

    started: list[Any] = []
    monkeypatch.setattr(_command, "run_trio", lambda *args: started.append(args) or 0)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "config.yaml").write_text(config)
    result = CliRunner().invoke(main, ["node", "run", "--data-dir", str(tmp_path / "data"),
                                       "--ephemeral", *flags],
                                env=environment(tmp_path), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    (_, *args), = started
    deployments = args[7]  # what `_run` hands open_node(deployments=...)
    assert deployments.ended_kept == kept


def within(seconds: float, check: Callable[[], bool]) -> bool:
    ends = time.monotonic() + seconds
    while not check():
        if time.monotonic() > ends:
            return False
        time.sleep(0.2)
    return True


def test_the_running_node_takes_in_a_grant_and_a_revocation_without_a_restart(
        own: OwnNode, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = run({**own.env, "UCAN_KEYSTORE": str(keys)}, str(UCAN), "key", "new", "late",
               "--json")
    late = json.loads(made.stdout)["did"]
    grant_file = tmp_path / "late.ucan"
    granted = own.dms("cap", "grant", "--to", late, "--cmd", "/dms/node/info",
                      "-o", str(grant_file), "--json")
    as_late = ("node", "status", "--node", own.listening["address"], "--as", "late",
               "--keystore", str(keys), "--proof", str(grant_file))
    assert own.dms(*as_late).exit_code == 0
    revoked = own.dms("cap", "revoke", json.loads(granted.stdout)["cid"])
    assert revoked.exit_code == 0, revoked.stderr
    assert within(5, lambda: own.dms(*as_late).exit_code == 1), "still answered after 5 s"
    assert "Revoked" in own.dms(*as_late).stderr

    market = own.dms("cap", "grant", "--to", own.listening["did"], "--cmd", "/dms/deployment")
    assert market.exit_code == 0, market.stderr
    assert within(5, lambda: "orchestrator" in json.loads(
        own.dms("node", "status", "--json").stdout)["roles"]), "no market after 5 s"
