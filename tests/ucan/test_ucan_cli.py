"""The `ucan` command, driven through click's runner and once as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ucan.cli import cli, parse_duration, parse_time
from ucan.container import decode_container


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    env = {"UCAN_KEYSTORE": str(tmp_path / "keys"), "UCAN_STORE": str(tmp_path / "store"),
           "UCAN_PASSPHRASE": "test passphrase"}
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None, ok: bool = True) -> Result:
        result = runner.invoke(cli, list(args), env=env, input=input)
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        return result

    return invoke


@pytest.fixture
def dids(run: Any) -> dict[str, str]:
    for name in ("root", "node", "actor"):
        run("key", "new", name)
    return {name: run("did", name).stdout.strip() for name in ("root", "node", "actor")}


def grant_chain(run: Any, dids: dict[str, str]) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms/deployment",
        "--policy", '[["<=", ".cpu", 4]]', "--exp", "1h", "-o", "g1.ucan")
    run("grant", "--as", "node", "--aud", dids["actor"], "--cmd", "/dms/deployment/bid",
        "--exp", "30m", "--proof", "g1.ucan", "-o", "g2.ucan")


def test_durations_and_times() -> None:
    assert [parse_duration(d) for d in ("30s", "5m", "24h", "7d", "never")] == [
        30, 300, 86400, 604800, None]
    assert parse_time("1700000000", 5) == 1700000000 and parse_time("5m", 100) == 400
    with pytest.raises(ValueError, match="30s"):
        parse_duration("soon")


def test_keys_are_listed_with_dids_without_a_passphrase(run: Any, dids: dict[str, str]) -> None:
    listed = json.loads(run("key", "list", "--json").stdout)
    assert {k["name"]: k["did"] for k in listed} == dids
    assert json.loads(run("did", "root", "--json").stdout)["did"] == dids["root"]


def test_a_missing_key_fails_on_stderr_with_its_name(run: Any) -> None:
    result = run("did", "nobody", ok=False)
    assert result.exit_code == 1 and result.stderr.startswith("KeyNotFound:")
    failure = json.loads(run("did", "nobody", "--json", ok=False).stderr)
    assert failure["error"] == "KeyNotFound"


def test_grant_invoke_verify_revoke_round_trip(run: Any, dids: dict[str, str]) -> None:
    grant_chain(run, dids)
    run("invoke", "--as", "actor", "--cmd", "/dms/deployment/bid", "--sub", dids["root"],
        "--args", '{"cpu": 2}', "--proof", "g2.ucan", "--proof", "g1.ucan", "-o", "inv.ucan")
    verified = json.loads(run("verify", "inv.ucan", "--proof", "g1.ucan", "--proof", "g2.ucan",
                              "--anchor", dids["root"], "--json").stdout)
    assert verified["valid"] and len(verified["chain"]) == 2
    run("verify", "inv.ucan")  # proofs found in the store by CID
    run("verify", "g1.ucan", "g2.ucan")
    out_of_order = json.loads(run("verify", "g2.ucan", "g1.ucan", "--json", ok=False).stdout)
    assert out_of_order["error"] == "InvalidAudience"
    stranger = run("verify", "inv.ucan", "--anchor", dids["node"], ok=False)
    assert stranger.stderr.startswith("InvalidSubject")
    later = run("verify", "inv.ucan", "--at", str(10**10), ok=False)
    assert later.exit_code == 1 and later.stderr.startswith("Expired")

    run("revoke", "g2.ucan", "--as", "node", "-o", "rev.ucan")
    revoked = json.loads(run("verify", "inv.ucan", "--json", ok=False).stdout)
    assert revoked == {"valid": False, "error": "Revoked", "detail": revoked["detail"]}


@pytest.mark.parametrize("args,error", [
    (["--cmd", "/dms"], "InvalidClaim"),  # wider than /dms/deployment
    (["--cmd", "/dms/deployment", "--exp", "48h"], "InvalidClaim"),  # outlives the proof
    (["--cmd", "/dms/deployment", "--exp", "never"], "InvalidClaim"),
    (["--cmd", "/dms/deployment", "--sub", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"],
     "InvalidSubject"),
])
def test_grant_refuses_what_its_proofs_cannot_support(
    run: Any, dids: dict[str, str], args: list[str], error: str
) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms/deployment",
        "--exp", "24h", "-o", "g1.ucan")
    result = run("grant", "--as", "node", "--aud", dids["actor"], *args, "--proof", "g1.ucan",
                 "-o", "g2.ucan", ok=False)
    assert result.exit_code == 1 and result.stderr.startswith(error), result.stderr
    assert not Path("g2.ucan").exists()


def test_grant_refuses_a_proof_delegated_to_someone_else(run: Any, dids: dict[str, str]) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms", "-o", "g1.ucan")
    result = run("grant", "--as", "actor", "--aud", dids["root"], "--cmd", "/dms",
                 "--proof", "g1.ucan", "-o", "g2.ucan", ok=False)
    assert result.stderr.startswith("UnavailableProof")


def test_invoke_refuses_what_its_proofs_do_not_prove(run: Any, dids: dict[str, str]) -> None:
    grant_chain(run, dids)
    result = run("invoke", "--as", "actor", "--cmd", "/dms/deployment/bid", "--sub",
                 dids["root"], "--args", '{"cpu": 8}', "--proof", "g1.ucan", "--proof",
                 "g2.ucan", "-o", "inv.ucan", ok=False)
    assert result.stderr.startswith("MatchError")


def test_base64_containers_flow_through_stdout_and_stdin(run: Any, dids: dict[str, str]) -> None:
    grant_chain(run, dids)
    text = run("invoke", "--as", "actor", "--cmd", "/dms/deployment/bid", "--sub", dids["root"],
               "--proof", "g1.ucan", "--proof", "g2.ucan", "--args", '{"cpu": 1}', "-o", "-",
               "--base64").stdout
    assert len(decode_container(text)) == 3
    Path("store").rename("elsewhere")  # the container alone must carry the proofs
    verified = json.loads(run("verify", "-", "--json", input=text.encode()).stdout)
    assert verified["valid"]
    shown = json.loads(run("inspect", "-", "--json", input=text.encode()).stdout)
    assert {t["kind"] for t in shown} == {"invocation", "delegation"}
    assert all(t["signature_valid"] for t in shown)


def test_inspect_shows_fields_cid_and_signature(run: Any, dids: dict[str, str]) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms", "--powerline",
        "--meta", '{"note": "hi"}', "--nbf", "1700000000", "--exp", "never", "-o", "p.ucan")
    shown = json.loads(run("inspect", "p.ucan", "--json").stdout)
    assert shown["sub"] is None and shown["exp"] is None and shown["nbf"] == 1700000000
    assert shown["meta"] == {"note": "hi"} and shown["signature_valid"] is True
    text = run("inspect", "p.ucan").stdout
    assert "signature_valid  true" in text and shown["cid"]["/"] in text
    damaged = run("inspect", "missing.ucan", ok=False)
    assert damaged.exit_code == 1 and "missing.ucan" in damaged.stderr


def test_the_installed_command_runs_as_a_process(tmp_path: Path) -> None:
    executable = Path(sys.executable).with_name("ucan")
    if not executable.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "UCAN_KEYSTORE": str(tmp_path / "k"),
           "UCAN_STORE": str(tmp_path / "s"), "UCAN_PASSPHRASE": "pw"}
    created = subprocess.run([executable, "key", "new", "solo", "--json"], env=env,
                             capture_output=True, text=True, timeout=60, check=True)
    did = json.loads(created.stdout)["did"]
    subprocess.run([executable, "grant", "--as", "solo", "--aud", did, "--cmd", "/x",
                    "-o", str(tmp_path / "g.ucan")], env=env, check=True, timeout=60,
                   capture_output=True)
    failed = subprocess.run([executable, "verify", str(tmp_path / "g.ucan"), "--at", "1"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 0, failed.stderr
    no_pass = {k: v for k, v in env.items() if k != "UCAN_PASSPHRASE"}
    refused = subprocess.run([executable, "grant", "--as", "solo", "--aud", did, "--cmd", "/x",
                              "-o", "-"], env=no_pass, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("PassphraseUnavailable")
