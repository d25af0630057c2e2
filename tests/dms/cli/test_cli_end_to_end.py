"""The `dms` deployment commands against a `dms dev` network of three providers, each
command a process of its own, as a user in another shell runs them."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    DMS,
    DevNet,
    free_port,
    gone_within,
    hello_web_on,
    json_lines,
    processes_under,
    start_dev,
)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNet]:
    net = start_dev(tmp_path_factory.mktemp("devnet"), providers=3)
    try:
        yield net
    finally:
        net.stop()
        gone_within(net.data_dir, 10)


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hello_web_on(tmp_path_factory.mktemp("ensemble") / "hello-web.yaml", free_port())


def test_dev_runs_an_orchestrator_and_three_providers_and_prints_the_grants(
        devnet: DevNet) -> None:
    ready = devnet.ready
    assert sorted(ready["nodes"]) == ["orchestrator", "provider1", "provider2", "provider3"]
    user_grant = (f"ucan grant --as org --aud {ready['user']} --cmd /dms/node/deployment "
                  f"--exp 7d -o")
    assert any(command.startswith(user_grant) for command in ready["commands"])
    assert sum("--provide" in command for command in ready["node_commands"]) == 3
    # each printed as it runs, at its address: the providers' --bootstrap is the
    # orchestrator's --listen
    assert f"--listen {ready['orchestrator']}" in ready["node_commands"][0]
    assert all(f"--bootstrap {ready['orchestrator']}" in command
               for command in ready["node_commands"][1:])
    nodes = [line for line in processes_under(devnet.data_dir) if "node run" in line]
    assert len(nodes) == 4, nodes
    assert (devnet.data_dir / "client.json").exists()


def test_a_second_dev_network_on_the_same_data_dir_is_refused(devnet: DevNet) -> None:
    again = devnet.dms("dev", "--providers", "1")
    assert again.returncode == 2
    assert "is in use by another `dms dev`" in again.stderr and "Traceback" not in again.stderr
    assert (devnet.data_dir / "client.json").exists()  # the running one's, untouched


def test_a_deployment_is_followed_until_ready_reported_and_shut_down(
        devnet: DevNet, ensemble: Path) -> None:
    deployed = devnet.dms("deploy", str(ensemble), "--wait", "--json")
    assert deployed.returncode == 0, deployed.stderr
    lines = json_lines(deployed.stdout)
    assert lines[0]["type"] == "submitted"
    deployment = lines[0]["id"]
    kinds = [(line.get("kind"), line.get("payload", {}).get("phase")) for line in lines
             if line["type"] == "event"]
    assert ("phase", "bidding") in kinds and ("phase", "running") in kinds
    final = lines[-1]
    assert final["type"] == "final" and final["outcome"] == "ready", final
    states = {a["name"]: a for a in final["status"]["allocations"]}
    assert states["web"]["state"] == "healthy" and states["client"]["state"] == "completed"
    assert states["web"]["provider"] != states["client"]["provider"]  # two providers
    assert "hello from web" in final["status"]["outputs"]["client"]
    _the_task_output_and_the_service_log_are_read(devnet, deployment)

    status = devnet.dms("status", deployment, "--json")
    assert status.returncode == 0, status.stderr
    reported = json_lines(status.stdout)[0]
    assert reported["phase"] == "running"
    assert reported["outputs"]["client"].strip() == "hello from web"
    stopped = devnet.dms("shutdown", deployment, "--wait", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json_lines(stopped.stdout)[-1]["outcome"] == "completed"
    again = devnet.dms("shutdown", deployment)  # nothing to do: said so, exit 0
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (f"deployment {deployment} had already ended (completed): "
                                    "nothing to shut down")
    again = devnet.dms("shutdown", deployment, "--wait", "--json")
    assert again.returncode == 0, again.stderr
    assert [line["type"] for line in json_lines(again.stdout)] == ["already_ended", "final"]
    assert json_lines(again.stdout)[0]["phase"] == "completed"
    events = devnet.dms("events", deployment)
    assert events.returncode == 0 and "web on provider" in events.stdout
    assert "phase completed" in events.stdout
    followed = devnet.dms("events", deployment, "--follow", "--json")  # it has ended: returns
    assert followed.returncode == 0, followed.stderr
    assert json_lines(followed.stdout)[-1]["payload"]["phase"] == "completed"
    workloads = [line for line in processes_under(devnet.data_dir) if "node run" not in line]
    assert workloads == []


def _the_task_output_and_the_service_log_are_read(devnet: DevNet, deployment: str) -> None:
    client = devnet.dms("logs", deployment, "client")
    assert client.returncode == 0, client.stderr
    assert client.stdout == "hello from web\n"
    web = devnet.dms("logs", deployment, "web", "--json")
    assert web.returncode == 0, web.stderr
    streams = {line["stream"]: line for line in json_lines(web.stdout)}
    assert streams["stdout"]["text"] == ""  # http.server logs its requests to stderr
    assert '"GET / HTTP/1.1" 200' in streams["stderr"]["text"]
    nope = devnet.dms("logs", deployment, "nope")
    assert nope.returncode == 1 and len(nope.stderr.splitlines()) == 1
    assert "no allocation 'nope'" in nope.stderr and "it has: client, web" in nope.stderr


TICKER = """
version: V1
allocations:
  ticker:
    type: task
    executor: process
    resources: {cpu: 0.2, ram: 32Mi, disk: 1Mi}
    execution:
      command: sh
      args: ["-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done; until [ -e {done} ]; do sleep 0.05; done"]
nodes:
  n: {allocations: [ticker]}
"""


def test_logs_follow_prints_each_line_once_until_the_deployment_ends(
        devnet: DevNet, tmp_path: Path) -> None:
    ticker = tmp_path / "ticker.yaml"
    done = tmp_path / "done"  # the task ends once the test has seen its lines: no race
    ticker.write_text(TICKER.replace("{done}", str(done)))
    deployed = devnet.dms("deploy", str(ticker))
    assert deployed.returncode == 0, deployed.stderr
    deployment = deployed.stdout.strip()
    # at once: the allocation may not be made yet, which following waits for
    follow = subprocess.Popen([str(DMS), "logs", deployment, "ticker", "--follow", "--stdout"],
                              env=devnet.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert follow.stdout is not None
        lines = [follow.stdout.readline() for _ in range(5)]
        done.touch()
        rest, stderr = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0, stderr
    assert "".join(lines) + rest == "".join(f"tick {i}\n" for i in range(1, 6))
    assert stderr == f"[dms: deployment {deployment} has ended]\n"


def test_a_plan_places_without_deploying_anything(devnet: DevNet, ensemble: Path) -> None:
    planned = devnet.dms("plan", str(ensemble), "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json_lines(planned.stdout)[0]
    assert plan["placeable"] and {n["node"] for n in plan["nodes"]} == {"server", "caller"}
    providers = {n["node"]: n["provider"] for n in plan["nodes"]}
    assert providers["server"] != providers["caller"]  # 0.6 cpu each, 1 core a provider
    # a round closes once every node has a candidate: not every bid need be in
    assert set(providers.values()) <= set(plan["bidders"]) and plan["total_price"] == 0


def test_an_unplaceable_plan_explains_and_exits_1(devnet: DevNet, ensemble: Path,
                                                  tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text(ensemble.read_text().replace("ram: 128Mi", "ram: 64Gi", 1))
    planned = devnet.dms("plan", str(huge))
    assert planned.returncode == 1
    assert planned.stdout.startswith("not placeable\nno suitable providers for server") \
        or "no suitable providers for server" in planned.stdout, planned.stdout
    assert planned.stdout.count("node server: ram:") == 3  # each provider's decline
    assert planned.stderr.startswith("Error: not placeable: cannot place the ensemble")
    assert len(planned.stderr.splitlines()) == 1


def test_a_deployment_no_provider_can_take_fails_at_once_with_the_reason(
        devnet: DevNet, tmp_path: Path) -> None:
    docker = tmp_path / "docker.yaml"
    docker.write_text(TICKER.replace("executor: process", "executor: docker").replace(
        "execution:\n", "execution:\n      image: alpine\n").replace("command: sh",
                                                                    "cmd: [sh]"))
    began = time.monotonic()
    deployed = devnet.dms("deploy", str(docker), "--wait", "--timeout", "60")
    assert deployed.returncode == 1, deployed.stdout
    assert time.monotonic() - began < 30  # not its 60 s deadline
    assert "no provider that answered can ever host" in deployed.stderr
    assert "executor docker not available here" in deployed.stderr


def test_a_bad_ensemble_is_refused_locally_with_every_problem_and_exit_1(
        devnet: DevNet, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: V1\nallocations:\n  a:\n    executor: procss\n"
                      "    resources: {cpu: 1, ram: 1Gi, disk: 1Gi}\n"
                      "    execution: {command: 'true'}\n"
                      "nodes:\n  n: {allocations: [b]}\n")
    # checked before connecting: an unreachable node would be exit 2
    result = devnet.dms("deploy", str(broken), "--wait", "--node",
                        f"ws://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "allocations.a.executor" in result.stderr and "procss" in result.stderr
    assert "nodes.n.allocations[0]" in result.stderr and "'b'" in result.stderr
    missing = devnet.dms("deploy", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_an_unreachable_node_exits_2_without_a_traceback(devnet: DevNet) -> None:
    result = devnet.dms("status", "--node", f"ws://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "unreachable" in result.stderr and "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_user_sees_what_the_orchestrator_is_sees_and_offers(devnet: DevNet) -> None:
    status = devnet.dms("node", "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["did"] == devnet.ready["orchestrator_did"]
    assert info["roles"] == ["orchestrator"] and info["markets"] == [devnet.ready["org"]]
    peers = devnet.dms("peers", "--json")
    assert peers.returncode == 0, peers.stderr
    linked = {row["peer"] for row in json.loads(peers.stdout)["peers"] if row["connected"]}
    providers = {did for name, did in devnet.ready["nodes"].items() if name != "orchestrator"}
    assert providers <= linked
    resources = devnet.dms("resources", "--json")
    assert resources.returncode == 0, resources.stderr
    assert json.loads(resources.stdout)["provider"] is False


def test_a_user_without_the_grant_is_refused_by_name_with_exit_1(devnet: DevNet) -> None:
    keys = devnet.data_dir / "dev" / "keys"
    proof = devnet.data_dir / "dev" / "grants" / "provider1.ucan"  # /dms/deployment only
    result = devnet.dms("list", "--as", "provider1", "--keystore", str(keys),
                        "--proof", str(proof))
    assert result.returncode == 1
    assert "refused: InvalidClaim" in result.stderr and "needs a grant" in result.stderr
    # the family of commands it will need, not only the one refused
    assert "--cmd /dms/node/deployment -o FILE" in result.stderr
    assert "the grants you presented cover /dms/deployment" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_printed_ucan_grant_makes_a_grant_the_node_accepts(devnet: DevNet,
                                                               tmp_path: Path) -> None:
    printed = next(c for c in devnet.ready["commands"] if "/dms/node/deployment" in c)
    argv = shlex.split(printed)
    argv[argv.index("-o") + 1] = str(tmp_path / "mine.ucan")
    env = {**devnet.env, "UCAN_KEYSTORE": str(devnet.data_dir / "dev" / "keys")}
    made = subprocess.run([str(DMS.with_name("ucan")), *argv[1:]], env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    listed = devnet.dms("list", "--proof", str(tmp_path / "mine.ucan"))
    assert listed.returncode == 0, listed.stderr


def test_the_live_view_renders_in_a_terminal(devnet: DevNet, ensemble: Path) -> None:
    """`deploy --wait` in a pseudo-terminal redraws in place (cursor movements) and
    ends with the outcome; piped (the tests above) it writes plain lines. The
    deployment is left running: the network's Ctrl-C stops it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(DMS), "deploy", str(ensemble), "--wait"], env=devnet.env,
                               stdin=follower, stdout=follower, stderr=follower,
                               start_new_session=True)
    os.close(follower)
    output = b""
    ends = time.monotonic() + 90
    while time.monotonic() < ends:
        readable, _, _ = select.select([leader], [], [], 1.0)
        if readable:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=30) == 0, output.decode(errors="replace")
    text = output.decode(errors="replace")
    assert "\x1b[1A" in text or "\x1b[2K" in text  # redrawn in place
    assert "ready: 1 service up, 1 task completed" in text
