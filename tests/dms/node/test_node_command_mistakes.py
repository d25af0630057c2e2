"""`dms node run` / `dms node ping`: every everyday mistake is one line on stderr and
exit 2, never a traceback; Ctrl-C while starting is exit 130."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner, Result

import dms.node._command as command
from dms.cli import main
from ucan import SigningKey, delegate
from ucan.keystore import FAST_INSECURE, Keystore

DMS = Path(sys.executable).with_name("dms")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    environ = {"UCAN_PASSPHRASE": "correct horse", "UCAN_KEYSTORE": str(tmp_path / "keys")}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **environ}


def dms(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result, *fragments: str, code: int = 2) -> str:
    assert result.exit_code == code, (result.output, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


UNRESOLVABLE = "no-such-host.invalid"  # answered by the `unresolvable` fixture (conftest)


@contextlib.contextmanager
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(("args", "says"), [
    (["--listen", "127.0.0.1:7000"], "--listen: bad address '127.0.0.1:7000': an address "
                                     "starts with its scheme: tcp://HOST:PORT or ws://"),
    (["--listen", "ws://127.0.0.1:7000/dms"], "--listen: bad address 'ws://127.0.0.1:7000/dms': "
                                              "a node listens on ws://HOST:PORT, with no path"),
    (["--listen", "ws://127.0.0.1"], "needs a host and a port"),
    (["--listen", "ws://127.0.0.1:70000"], "Port out of range"),
    (["--bootstrap", "http://127.0.0.1:7000"], "--bootstrap: bad address"),
    (["--bootstrap", "ws://127.0.0.1:-1"], "--bootstrap: bad address"),
    (["--anchor", "did:web:example.com"], "--anchor: not an Ed25519 did:key"),
    (["--anchor", "did:key:zNotBase58!"], "--anchor: did:key"),
    (["--anchor", "did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc"],  # X25519
     "does not name an Ed25519 public key"),
    (["--proof", "/nonexistent/grant.ucan"], "--proof /nonexistent/grant.ucan: No such file"),
    (["--key-name", "../escape"], "InvalidKeyName"),
    (["--ports", "9000-8000"], "--ports: '9000-8000': ports are 1-65535, low to high"),
])
def test_a_bad_run_option_is_one_line_and_exit_2_before_anything_starts(env, args, says):
    result = dms("node", "run", *args)
    one_line_error(result, says)
    assert not Path(env["UCAN_KEYSTORE"]).exists()  # refused before a key was made


def test_a_proof_file_that_is_no_delegation_is_one_line(env, tmp_path: Path):
    junk = tmp_path / "junk.ucan"
    junk.write_bytes(b"certainly not a token")
    one_line_error(dms("node", "run", "--ephemeral", "--proof", str(junk)),
                   f"--proof {junk}: not a delegation")


def test_a_port_in_use_is_one_line_naming_the_address(env):
    with port_in_use() as port:
        result = dms("node", "run", "--ephemeral", "--listen", f"ws://127.0.0.1:{port}")
    one_line_error(result, f"cannot listen on ws://127.0.0.1:{port}", "in use")


def test_a_listen_address_not_on_this_machine_is_one_line(env):
    one_line_error(dms("node", "run", "--ephemeral", "--listen", "ws://192.0.2.1:0"),
                   "cannot listen on ws://192.0.2.1:0: Cannot assign requested address")


def test_an_unresolvable_listen_host_is_one_line(env, unresolvable):
    one_line_error(dms("node", "run", "--ephemeral", "--listen", f"ws://{unresolvable}:0"),
                   f"cannot listen on ws://{unresolvable}:0: Name or service not known")


def test_ping_of_an_unresolvable_host_is_unreachable_on_one_line(env, unresolvable):
    result = dms("node", "ping", f"ws://{unresolvable}:7000", "--timeout", "0.5")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"unreachable: cannot connect to ws://{unresolvable}:7000: Name or service not known"]


@pytest.mark.parametrize(("args", "says"), [
    (["--timeout", "-1"], "--timeout must be more than 0, got -1"),
    (["--timeout", "0"], "--timeout must be more than 0"),
    (["--count", "0"], "--count must be more than 0, got 0"),
    (["--count", "-3"], "--count must be more than 0"),
])
def test_a_bad_ping_option_is_one_line_and_exit_2(env, args, says):
    one_line_error(dms("node", "ping", "ws://127.0.0.1:1", *args), says)


@pytest.mark.parametrize("address", ["127.0.0.1:7000", "http://127.0.0.1:7000",
                                     "ws://127.0.0.1:99999"])
def test_a_bad_ping_address_is_one_line_and_exit_2(env, address):
    line = one_line_error(dms("node", "ping", address), f"bad address {address!r}")
    assert line.startswith("Error: ADDRESS: ")  # the positional argument, not an option


def test_ping_with_a_proof_granted_to_someone_else_says_so(env, tmp_path):
    keys = Keystore(Path(env["UCAN_KEYSTORE"]), limits=FAST_INSECURE)
    keys.create("me", "correct horse")
    other = SigningKey.generate()
    grant = delegate(SigningKey.generate(), other.did, "/dms/node", expiration=None)
    (tmp_path / "theirs.ucan").write_bytes(grant.envelope)
    result = dms("node", "ping", "ws://127.0.0.1:1", "--as", "me", "--proof",
                 str(tmp_path / "theirs.ucan"))
    one_line_error(result, "--proof", "no grant is delegated to you", other.did)


def test_ping_as_a_key_that_does_not_exist_is_refused_and_creates_nothing(env):
    keys = Path(env["UCAN_KEYSTORE"])
    Keystore(keys, limits=FAST_INSECURE).create("someone", "correct horse")
    result = dms("node", "ping", "ws://127.0.0.1:1", "--as", "me")
    one_line_error(result, "KeyNotFound", "no key named 'me'", "ucan key new me")
    assert sorted(p.name for p in keys.iterdir()) == ["someone.key"]


def test_ping_with_a_keystore_that_does_not_exist_is_refused_and_creates_nothing(env, tmp_path):
    missing = tmp_path / "typo" / "keys"
    result = dms("node", "ping", "ws://127.0.0.1:1", "--as", "me", "--keystore", str(missing))
    one_line_error(result, f"keystore {missing} does not exist", "key new me")
    assert not missing.parent.exists()


def test_run_creates_the_node_key_on_first_use_and_says_so(env, monkeypatch):
    # the documented exception: `run`'s own key; stop the node as soon as it would start
    @contextlib.asynccontextmanager
    async def interrupted(key: SigningKey, **options: object) -> AsyncIterator[None]:
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(command, "open_node", interrupted)
    result = dms("node", "run")
    keys = Keystore(env["UCAN_KEYSTORE"])
    did = keys.did("node")
    assert f"created node key 'node' ({did}) in {keys.directory}" in result.stderr


def test_ctrl_c_at_the_passphrase_prompt_is_exit_130_without_a_traceback(env, monkeypatch):
    def ctrl_c(*args: object) -> SigningKey:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "load_node_key", ctrl_c)
    result = dms("node", "run")
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted"


def test_ctrl_c_while_the_node_starts_is_exit_130_without_a_traceback(env, monkeypatch):
    real_open_node = command.open_node

    @contextlib.asynccontextmanager
    async def ctrl_c_inside(key: SigningKey, **options: object) -> AsyncIterator[object]:
        async with real_open_node(key, **options) as running:  # type: ignore[arg-type]
            raise KeyboardInterrupt  # as trio delivers Ctrl-C: inside the node's nurseries
            yield running

    monkeypatch.setattr(command, "open_node", ctrl_c_inside)
    result = dms("node", "run", "--ephemeral")
    assert result.exit_code == 130, result.stderr
    assert result.stderr.strip() == "interrupted"


# -- as separate processes -----------------------------------------------------------------


@pytest.fixture
def dms_script() -> Path:
    if not DMS.exists():
        pytest.skip(f"console scripts not installed next to {sys.executable}")
    return DMS


async def not_a_node(stream: trio.SocketStream) -> None:
    with contextlib.suppress(trio.BrokenResourceError):
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await trio.sleep(5)


async def garbage(stream: trio.SocketStream) -> None:
    with contextlib.suppress(trio.BrokenResourceError):
        await stream.send_all(b"\x00\xff not http \x13\x37" * 64)
        await trio.sleep(5)


async def closes(stream: trio.SocketStream) -> None:
    await stream.aclose()


@pytest.mark.parametrize(("answer", "says"), [
    (not_a_node, "it answered HTTP 404 instead of a websocket upgrade (is this a dms "
                 "node's address?)"),
    (garbage, "it does not speak websocket"),
    (closes, "the connection closed before the websocket handshake completed"),
])
async def test_ping_of_an_address_that_is_not_a_node_says_what_it_answered(env, dms_script,
                                                                          answer, says):
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, answer, 0,
                                                          host="127.0.0.1"))
        address = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        result = await trio.run_process([str(dms_script), "node", "ping", address,
                                         "--timeout", "1"], env=env, capture_stdout=True,
                                        capture_stderr=True, check=False)
        nursery.cancel_scope.cancel()
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"unreachable: cannot connect to {address}: {says}")


def test_ctrl_c_at_a_real_passphrase_prompt_is_exit_130_without_a_traceback(dms_script,
                                                                            tmp_path: Path):
    import pty
    import select
    import signal
    import time

    environ = {k: v for k, v in os.environ.items() if k != "UCAN_PASSPHRASE"}
    environ["UCAN_KEYSTORE"] = str(tmp_path / "keys")
    pid, terminal = pty.fork()
    if pid == 0:  # the child, on the pty as its controlling terminal
        os.execve(str(dms_script), [str(dms_script), "node", "run"], environ)
    seen, deadline = b"", time.monotonic() + 30
    while b"passphrase for key 'node'" not in seen:
        ready, _, _ = select.select([terminal], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"no passphrase prompt within 30 s: {seen!r}")
        seen += os.read(terminal, 1024)
    os.write(terminal, b"\x03")  # Ctrl-C, as the terminal sends it: SIGINT to the child
    deadline = time.monotonic() + 30
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"Ctrl-C did not end the node within 30 s: {seen!r}")
        time.sleep(0.05)
    status = ended[1]
    with contextlib.suppress(OSError):  # EIO once the child has gone
        while chunk := os.read(terminal, 4096):
            seen += chunk
    os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 130, seen
    assert b"Traceback" not in seen and b"interrupted" in seen
    assert not (tmp_path / "keys").exists()


async def test_a_node_whose_bootstrap_peer_is_not_a_node_keeps_running(env, dms_script):
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, not_a_node, 0,
                                                          host="127.0.0.1"))
        address = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        process = await nursery.start(functools.partial(
            trio.run_process, [str(dms_script), "node", "run", "--ephemeral", "--json",
                               "--bootstrap", address],
            env=env, stdout=-1, stderr=-1, check=False))
        with trio.fail_after(60):  # started (a loaded machine imports slowly)
            out = (await process.stdout.receive_some(65536)).decode()
        assert '"event": "listening"' in out
        await trio.sleep(2)  # several failed dials with backoff
        assert process.returncode is None  # still running
        process.send_signal(2)  # Ctrl-C once running: a clean stop
        with trio.fail_after(20):
            await process.wait()
        out += (await process.stdout.receive_some(65536)).decode()
        err = (await process.stderr.receive_some(65536) or b"").decode()
        nursery.cancel_scope.cancel()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert '"event": "stopped"' in out and '"net.mesh.dial_failures"' in out
