"""The client config `dms dev` writes and the deployment commands read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dms.cli._config import (
    ClientConfig,
    InvalidClientConfig,
    config_path,
    data_directory,
    read_client_config,
    remove_client_config,
    write_client_config,
)

CONFIG = ClientConfig(node="ws://127.0.0.1:4000", node_did="did:key:zNode", keystore="/k",
                      key="user", proofs=("/g/user.ucan",), names={"did:key:zP": "provider1"},
                      written_by="test")


def test_a_written_config_reads_back_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    path = config_path(tmp_path)
    write_client_config(path, CONFIG)
    assert read_client_config(path) == CONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_config_is_none_and_the_data_dir_comes_from_option_env_then_home() -> None:
    assert read_client_config(Path("/nonexistent/client.json")) is None
    assert data_directory("/x", env={"DMS_DATA_DIR": "/y"}) == Path("/x")
    assert data_directory(None, env={"DMS_DATA_DIR": "/y"}) == Path("/y")
    assert data_directory(None, env={}) == Path("~/.local/share/dms").expanduser()


@pytest.mark.parametrize(("content", "named"), [
    ("not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"node": "ws://a:1"}', "required field missing @ $.node_did"),
    ('{"node": 7, "node_did": "d", "keystore": "k", "key": "u"}', "expected str @ $.node"),
    ('{"node": "udp://a:1", "node_did": "d", "keystore": "k", "key": "u"}',
     "$.node: bad address 'udp://a:1': 'udp' is not a scheme"),
    ('{"node": "n", "node_did": "d", "keystore": "k", "key": "u", "nod": 1}', "nod"),
])
def test_a_bad_config_names_the_file_and_the_field(tmp_path: Path, content: str,
                                                   named: str) -> None:
    path = tmp_path / "client.json"
    path.write_text(content)
    with pytest.raises(InvalidClientConfig) as raised:
        read_client_config(path)
    assert str(path) in str(raised.value) and named in str(raised.value)


def test_a_network_removes_only_its_own_config(tmp_path: Path) -> None:
    path = config_path(tmp_path)
    other = ClientConfig(node="ws://127.0.0.1:5000", node_did="did:key:zOther",
                         keystore="/k", key="user")
    write_client_config(path, other)
    remove_client_config(path, CONFIG)
    assert read_client_config(path) == other
    remove_client_config(path, other)
    assert not path.exists()


def test_as_another_key_looks_in_the_configs_keystore_first(tmp_path: Path,
                                                            monkeypatch) -> None:
    from dms.cli._target import resolve_target
    from ucan.keystore import Keystore

    monkeypatch.setenv("UCAN_PASSPHRASE", "config test")
    monkeypatch.setenv("UCAN_KEYSTORE", str(tmp_path / "elsewhere"))
    keys = Keystore(tmp_path / "keys")
    for name in ("user", "bob"):
        keys.create(name, "config test")
    write_client_config(config_path(tmp_path), ClientConfig(
        node="ws://127.0.0.1:7000", node_did=keys.did("user"), keystore=str(tmp_path / "keys"),
        key="user"))
    bob = resolve_target(str(tmp_path), None, "bob", None, ())
    assert bob.key.did == keys.did("bob") and bob.proofs == ()
