"""The `ucan` command, driven through click's runner and once as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
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
    assert revoked == {"valid": False, "error": "Revoked", "detail": revoked["detail"],
                       "from_store": revoked["from_store"]}


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
    assert result.stderr.startswith("InvalidAudience: none of the proofs is delegated to "
                                    f"{dids['actor']}")
    assert f"is delegated to {dids['node']}" in result.stderr


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
    assert damaged.exit_code == 2 and "missing.ucan" in damaged.stderr  # unreadable: usage


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


# -- found by a new user's review ----------------------------------------------------------


def inspected(run: Any, path: str) -> dict[str, Any]:
    return json.loads(run("inspect", path, "--json").stdout)  # type: ignore[no-any-return]


def test_the_default_expiry_is_clamped_to_the_proofs_with_a_note(
    run: Any, dids: dict[str, str]
) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms", "--exp", "1h",
        "-o", "g1.ucan")
    result = run("grant", "--as", "node", "--aud", dids["actor"], "--cmd", "/dms",
                 "--proof", "g1.ucan", "-o", "g2.ucan")
    assert "expiry clamped to the proof's" in result.stderr
    assert inspected(run, "g2.ucan")["exp"] == inspected(run, "g1.ucan")["exp"]
    quiet = run("grant", "--as", "node", "--aud", dids["actor"], "--cmd", "/dms",
                "--exp", "30m", "--proof", "g1.ucan", "-o", "g3.ucan")
    assert quiet.stderr == ""


def test_an_explicit_expiry_beyond_the_proofs_suggests_the_latest_exp(
    run: Any, dids: dict[str, str]
) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms", "--exp", "2h",
        "-o", "g1.ucan")
    result = run("grant", "--as", "node", "--aud", dids["actor"], "--cmd", "/dms",
                 "--exp", "3h", "--proof", "g1.ucan", "-o", "g2.ucan", ok=False)
    assert result.exit_code == 1 and result.stderr.startswith("InvalidClaim")
    # 2h, or 1h when a second passed between the two grants (rounded down, never later)
    assert re.search(r"give --exp no later than [12]h \(\d{4}-", result.stderr)
    assert not Path("g2.ucan").exists()


def test_a_refusal_names_the_first_reason_and_never_the_policy(
    run: Any, dids: dict[str, str]
) -> None:
    run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/dms/deployment",
        "--policy", '[["<=", ".cpu", 2]]', "--exp", "1h", "-o", "g1.ucan")
    result = run("grant", "--as", "node", "--aud", dids["actor"], "--cmd", "/dms",
                 "--policy", "[]", "--exp", "2h", "--proof", "g1.ucan", "-o", "g2.ucan",
                 ok=False)
    assert result.stderr.startswith("InvalidClaim") and "does not prove /dms" in result.stderr
    run("grant", "--as", "node", "--aud", dids["actor"], "--cmd", "/dms/deployment",
        "--policy", '[["<=", ".cpu", 64]]', "--proof", "g1.ucan", "-o", "g2.ucan")
    shown = " ".join(run("grant", "--help").stdout.split())
    assert "accumulate" in shown and "Policies are not compared" in shown


def test_verify_says_which_proofs_came_from_the_store(run: Any, dids: dict[str, str]) -> None:
    grant_chain(run, dids)
    run("invoke", "--as", "actor", "--cmd", "/dms/deployment/bid", "--sub", dids["root"],
        "--args", '{"cpu": 2}', "--proof", "g1.ucan", "--proof", "g2.ucan", "-o", "inv.ucan")
    g1, g2 = (inspected(run, p)["cid"]["/"] for p in ("g1.ucan", "g2.ucan"))
    text = run("verify", "inv.ucan").stdout
    assert "proofs from the store" in text and g1 in text and g2 in text
    partly = json.loads(run("verify", "inv.ucan", "--proof", "g2.ucan", "--json").stdout)
    assert partly["from_store"] == [{"/": g1}]
    given = run("verify", "inv.ucan", "--proof", "g1.ucan", "--proof", "g2.ucan").stdout
    assert "store" not in given
    refused = json.loads(run("verify", "inv.ucan", "--no-store", "--json", ok=False).stdout)
    assert refused["error"] == "UnavailableProof" and refused["from_store"] == []
    assert "token store" in " ".join(run("verify", "--help").stdout.split())


@pytest.mark.parametrize("command", [
    ["grant", "--as", "root", "--aud", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
     "--cmd", "/x"],
    ["invoke", "--as", "root", "--cmd", "/x", "--sub",
     "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"],
    ["revoke", "bafyreidxxdoru56d3aurpu5qd64axlutiit2rlvcvf3ipmp6ccmvsayb7q", "--as", "root"],
])
def test_json_with_a_token_on_stdout_is_a_usage_error(run: Any, command: list[str]) -> None:
    result = run(*command, "-o", "-", "--json", ok=False)
    assert result.exit_code == 2 and result.stdout == ""
    assert "--json" in result.stderr and "-o -" in result.stderr


def test_durations_must_be_positive_and_fit_a_token_time() -> None:
    for text in ("0s", "-5m", "-0h"):
        with pytest.raises(ValueError, match="must be positive"):
            parse_duration(text)
    with pytest.raises(ValueError, match="duration too large"):
        parse_duration("99999999999999999999w")
    with pytest.raises(ValueError, match="duration too large"):
        parse_time("10000000000w", 2**52)
    with pytest.raises(ValueError, match="time too large"):
        parse_time(str(2**53), 0)


@pytest.mark.parametrize("exp", ["0s", "-1h", "99999999999999999999w", "15000000000w"])
def test_a_grant_with_an_unusable_duration_is_refused_without_a_cid(
    run: Any, dids: dict[str, str], exp: str
) -> None:
    result = run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/x", "--exp", exp,
                 "-o", "g.ucan", ok=False)
    assert result.exit_code == 1 and result.stderr.startswith("CommandFailed: duration")
    assert "bafy" not in result.stderr and not Path("g.ucan").exists()


def test_a_grant_starting_after_it_expires_is_refused(run: Any, dids: dict[str, str]) -> None:
    result = run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/x",
                 "--nbf", "2h", "--exp", "1h", "-o", "g.ucan", ok=False)
    assert result.exit_code == 1 and "--nbf 2h" in result.stderr
    assert "never be used" in result.stderr and not Path("g.ucan").exists()


def test_revoking_an_invocation_file_is_refused(run: Any, dids: dict[str, str]) -> None:
    run("invoke", "--as", "root", "--cmd", "/x", "--sub", dids["root"], "-o", "inv.ucan")
    result = run("revoke", "inv.ucan", "--as", "root", "-o", "rev.ucan", ok=False)
    assert result.exit_code == 1 and "only delegations can be revoked" in result.stderr
    assert not Path("rev.ucan").exists()


def test_revoking_someone_elses_delegation_warns_where_it_counts(
    run: Any, dids: dict[str, str]
) -> None:
    grant_chain(run, dids)
    own = run("revoke", "g2.ucan", "--as", "node", "-o", "r1.ucan")
    assert own.stderr == ""
    above = run("revoke", "g2.ucan", "--as", "root", "-o", "r2.ucan")
    assert above.stderr.startswith("warning: root") and "did not issue" in above.stderr
    assert "only in chains where root issued a delegation above it" in above.stderr
    bare = run("revoke", inspected(run, "g2.ucan")["cid"]["/"], "--as", "actor", "-o", "r3.ucan")
    assert bare.stderr == ""  # a bare CID cannot be checked


def test_an_output_path_that_is_a_directory_is_named(run: Any, dids: dict[str, str]) -> None:
    result = run("grant", "--as", "root", "--aud", dids["node"], "--cmd", "/x", "-o", ".",
                 ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("CommandFailed: -o .: is a directory")


def test_an_unwritable_keystore_is_a_keystore_error_naming_it(run: Any) -> None:
    Path("plain").write_text("")
    result = run("--keystore", "plain", "key", "new", "foo", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("KeystoreError: keystore plain is not a directory")


def test_a_garbled_raw_envelope_is_named_with_its_file(run: Any) -> None:
    Path("bad.ucan").write_bytes(b"\x82garbage")
    result = run("inspect", "bad.ucan", ok=False)
    assert result.exit_code == 1 and result.stderr.startswith("MalformedToken: bad.ucan: ")


def test_a_corrupt_key_file_does_not_hide_the_others(run: Any, dids: dict[str, str]) -> None:
    Path("keys/broken.key").write_text("{")
    result = run("key", "list", ok=False)
    assert result.exit_code == 1
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        "actor", "node", "root"]
    assert result.stderr.startswith("CorruptKeyFile: ") and "broken.key" in result.stderr
    listed = run("key", "list", "--json", ok=False)
    assert len(json.loads(listed.stdout)) == 3
    assert json.loads(listed.stderr)["error"] == "CorruptKeyFile"


def test_an_empty_keystore_lists_nothing_and_says_so(run: Any, tmp_path: Path) -> None:
    result = run("key", "list")
    assert result.stdout == "" and result.stderr == f"no keys in {tmp_path / 'keys'}\n"
    assert json.loads(run("key", "list", "--json").stdout) == []


def test_version_is_the_installed_package_version(run: Any) -> None:
    assert run("--version").stdout == f"ucan, version {version('pydms')}\n"


def test_the_installed_command_keeps_stdout_for_the_token(tmp_path: Path) -> None:
    executable = Path(sys.executable).with_name("ucan")
    if not executable.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "UCAN_KEYSTORE": str(tmp_path / "k"),
           "UCAN_STORE": str(tmp_path / "s"), "UCAN_PASSPHRASE": "pw"}

    def ucan(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([executable, *args], env=env, capture_output=True, timeout=60)

    shown = ucan("--version")
    assert shown.returncode == 0 and shown.stdout.decode() == f"ucan, version {version('pydms')}\n"
    empty = ucan("key", "list")
    assert empty.returncode == 0 and empty.stdout == b"" and b"no keys in" in empty.stderr
    did = json.loads(ucan("key", "new", "solo", "--json").stdout)["did"]
    mixed = ucan("grant", "--as", "solo", "--aud", did, "--cmd", "/x", "-o", "-", "--json")
    assert mixed.returncode == 2 and b"--json" in mixed.stderr and mixed.stdout == b""
    ucan("grant", "--as", "solo", "--aud", did, "--cmd", "/x", "--exp", "1h",
         "-o", str(tmp_path / "g1.ucan"))
    clamped = ucan("grant", "--as", "solo", "--aud", did, "--cmd", "/x",
                   "--proof", str(tmp_path / "g1.ucan"), "-o", "-")
    assert clamped.returncode == 0 and b"expiry clamped" in clamped.stderr
    assert clamped.stdout[0] == 0x82  # only the raw token on stdout


def test_signing_as_a_key_that_does_not_exist_creates_nothing_and_says_how(run: Any,
                                                                           tmp_path: Path) -> None:
    run("key", "new", "root")
    result = run("grant", "--as", "me", "--aud", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                 "--cmd", "/dms", "-o", "g.ucan", ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"KeyNotFound: no key named 'me' in {tmp_path / 'keys'}: create it with "
        "`ucan key new me`"]
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["root.key"]


def test_a_keystore_that_does_not_exist_is_named_and_not_created(run: Any,
                                                                 tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    result = run("--keystore", str(missing), "invoke", "--as", "me", "--cmd", "/dms",
                 "--sub", "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                 "-o", "i.ucan", ok=False)
    assert result.exit_code == 1
    assert f"keystore {missing} does not exist" in result.stderr
    assert "key new me" in result.stderr
    assert not missing.exists()


def test_an_unreadable_file_is_exit_2_and_an_invalid_token_exit_1(run: Any) -> None:
    missing = run("verify", "missing.ucan", "--json", ok=False)
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"] == "Unreadable"
    assert run("inspect", "missing.ucan", ok=False).exit_code == 2
    Path("junk.ucan").write_bytes(b"\x82junk")
    assert run("verify", "junk.ucan", ok=False).exit_code == 1


def test_revoking_a_text_that_is_not_a_cid_is_refused(run: Any) -> None:
    run("key", "new", "org")
    result = run("revoke", "bafynotacid", "--as", "org", "-o", "r.ucan", ok=False)
    assert result.exit_code == 1 and "not a CID" in result.stderr
    assert not Path("r.ucan").exists()
