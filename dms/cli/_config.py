"""The client config: which node the deployment commands talk to, and as whom.

`dms dev` writes one into its data directory when its network is up (and removes it
when the network stops), so that `dms deploy`, `dms status`, ... in another shell reach
that network with no flags. Flags override any field of it (`--node`, `--as`,
`--keystore`, `--proof`). It names the node's DID as well as its address: a different
node answering at that address is refused, not trusted.

    {"node": "tcp://127.0.0.1:40123", "node_did": "did:key:z...", "keystore": ".../keys",
     "key": "user", "proofs": [".../grants/user.ucan"], "names": {"did:key:z...": "provider1"},
     "written_by": "dms dev (pid 4242)"}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import cattrs

from dms._small_file import UnreadableFile, read_small_file
from dms.net import NetError
from dms.net._address import parse_node_address

DATA_DIR_ENV = "DMS_DATA_DIR"
DEFAULT_DATA_DIR = "~/.local/share/dms"
CLIENT_CONFIG = "client.json"
MAX_CONFIG_BYTES = 1 << 20


class InvalidClientConfig(ValueError):
    """A client config that cannot be read (the message names the file and the field)."""


@attrs.frozen
class ClientConfig:
    node: str  # the node's address, tcp:// or ws:// (`dms.net._address`)
    node_did: str  # whom we expect to answer there
    keystore: str  # the user's keystore directory
    key: str  # the user's key name in it
    proofs: tuple[str, ...] = ()  # grant files the user presents
    names: Mapping[str, str] = attrs.field(factory=dict)  # DID -> a name to show
    written_by: str = ""


_converter = cattrs.Converter(forbid_extra_keys=True)


def _text(value: object, _: type) -> str:
    if not isinstance(value, str):  # cattrs would turn 1 into "1"
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


_converter.register_structure_hook(str, _text)


def data_directory(option: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> Path:
    """The data directory: `option`, else $DMS_DATA_DIR, else ~/.local/share/dms."""
    environ = os.environ if env is None else env
    chosen = option if option is not None else environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def config_path(data_dir: Path) -> Path:
    return data_dir / CLIENT_CONFIG


def read_client_config(path: Path) -> ClientConfig | None:
    """The config at `path`, None when there is none; InvalidClientConfig when it is
    there but unreadable or wrong."""
    try:
        data = read_small_file(path, MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        raise InvalidClientConfig(str(exc)) from None
    if data is None:
        return None
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidClientConfig(f"{path}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidClientConfig(f"{path}: expected a JSON object, got {type(raw).__name__}")
    try:
        config = _converter.structure(raw, ClientConfig)
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError, TypeError,
            ValueError) as exc:
        raise InvalidClientConfig(f"{path}: {'; '.join(_problems(exc))}") from None
    try:
        parse_node_address(config.node)
    except NetError as exc:
        raise InvalidClientConfig(f"{path}: $.node: {exc}") from None
    return config


def _problems(exc: BaseException) -> list[str]:
    """Each problem with where it is (`missing required field @ $.node_did`)."""
    if isinstance(exc, cattrs.BaseValidationError):
        return cattrs.transform_error(exc)
    return [str(exc)]


def write_client_config(path: Path, config: ClientConfig) -> None:
    """Write atomically (a reader never sees half a file), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        json.dump(_converter.unstructure(config), file, indent=2)
        file.write("\n")
    os.replace(partial, path)


def remove_client_config(path: Path, config: ClientConfig) -> None:
    """Remove the config at `path` if it is still `config` (another network's stays)."""
    try:
        if read_client_config(path) == config:
            path.unlink()
    except (InvalidClientConfig, OSError):
        pass
