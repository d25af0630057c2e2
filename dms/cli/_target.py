"""Which node a deployment command talks to, and as whom: its flags over the client
config (`dms dev` writes one), resolved and checked before anything connects.

    --node ADDR      the node's address (default: the config's)
    --as NAME        the user's key (default: the config's; a key never made here)
    --keystore DIR   where that key is (default: the config's keystore when it holds that key, else
                     $UCAN_KEYSTORE or ~/.config/ucan/keys)
    --proof FILE     grants to present (default: the config's for its key)
    --data-dir DIR   where the client config is (default $DMS_DATA_DIR or
                     ~/.local/share/dms)

With no client config in the data directory but a node's (`dms init` made it), the
command talks to that node as its owner: its listen address (on loopback when it
listens on every interface), its DID, the `user` key and the owner's grant there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dms.net._address import NodeAddress, parse_node_address
from dms.node._command import check_node_address, load_key_or_exit, read_grants
from dms.node._config import NODE_KEY, USER_KEY, DataLayout, InvalidNodeConfig, read_node_config
from ucan.keystore import Keystore, KeystoreError, keystore_directory, open_key

from ._config import (
    ClientConfig,
    InvalidClientConfig,
    config_path,
    data_directory,
    read_client_config,
)
from ._errors import Mistake
from ._session import Target

F = TypeVar("F", bound=Callable[..., Any])


def client_options(command: F) -> F:
    """The options every command that talks to a node takes, gathered into `target`
    (a function that resolves them: it may ask for a passphrase)."""

    @click.option("--node", metavar="ADDR", callback=check_node_address,
                  help="The node's address, tcp://HOST:PORT or ws://HOST:PORT[/PATH] "
                       "(default: the client config's).")
    @click.option("--as", "as_name", metavar="NAME",
                  help="Your key in the keystore (default: the client config's).")
    @click.option("--keystore", type=click.Path(file_okay=False),
                  help="Keystore directory of --as (default $UCAN_KEYSTORE or "
                       "~/.config/ucan/keys).")
    @click.option("--proof", multiple=True, metavar="FILE",
                  help="A grant to present (repeat; default: the client config's).")
    @click.option("--data-dir", type=click.Path(file_okay=False),
                  help="Where the client config is (default $DMS_DATA_DIR or "
                       "~/.local/share/dms).")
    @functools.wraps(command)
    def with_target(*args: Any, node: str | None, as_name: str | None,
                    keystore: str | None, proof: tuple[str, ...], data_dir: str | None,
                    **kwargs: Any) -> Any:
        target = functools.partial(resolve_target, data_dir, node, as_name, keystore, proof)
        return command(*args, target=target, **kwargs)

    return with_target  # type: ignore[return-value]


def resolve_target(data_dir: str | None, node: str | None, as_name: str | None,
                   keystore: str | None, proof: tuple[str, ...]) -> Target:
    path = config_path(data_directory(data_dir))
    try:
        config = read_client_config(path)
    except InvalidClientConfig as exc:
        raise Mistake(f"client config {exc}") from None
    if config is None:
        config = _own_node(path.parent)
    if node is None and config is None:
        raise Mistake(f"no node to talk to: there is no client config at {path} (start "
                      f"`dms dev`, make a node with `dms init`, or pass --node tcp://HOST:PORT "
                      f"--as NAME)")
    if as_name is None and config is None:
        raise Mistake("--as NAME: which of your keys to act as (no client config names one)")
    ours = config is not None and as_name in (None, config.key)
    name = as_name or (config.key if config is not None else "")
    directory = keystore_directory(keystore)
    if keystore is None and config is not None and (
            ours or Keystore(Path(config.keystore)).path_of(name).exists()):
        directory = Path(config.keystore)  # the config's keystore holds this key
    proofs = proof or (config.proofs if ours and config is not None else ())
    grants = read_grants(proofs)
    key = load_key_or_exit(lambda: open_key(directory, name))
    same_node = config is not None and node in (None, config.node)
    return Target(address=node or (config.node if config is not None else ""),
                  did=config.node_did if same_node and config is not None else None,
                  key=key, proofs=tuple(grants),
                  names=dict(config.names) if config is not None else {})


def _own_node(data_dir: Path) -> ClientConfig | None:
    """The owner's view of the node whose data directory this is (None: it is not one)."""
    layout = DataLayout(data_dir)
    try:
        settings = read_node_config(layout.config)
    except InvalidNodeConfig as exc:
        raise Mistake(f"config {exc}") from None
    keys = Keystore(layout.keystore)
    if settings is None or not keys.path_of(NODE_KEY).exists():
        return None
    listen = parse_node_address(settings.listen)
    if listen.port == 0:
        raise Mistake(f"the node of {data_dir} listens on port 0 (one picked when it starts): "
                      f"pass --node with the address it printed")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen.host, listen.host)
    try:
        did = keys.did(NODE_KEY)
    except KeystoreError as exc:
        raise Mistake(str(exc)) from None
    return ClientConfig(node=str(NodeAddress(listen.scheme, host, listen.port)), node_did=did,
                        keystore=str(layout.keystore), key=USER_KEY,
                        proofs=(str(layout.user_grant),) if layout.user_grant.exists() else (),
                        names={did: "node"}, written_by=f"dms init ({layout.config})")
