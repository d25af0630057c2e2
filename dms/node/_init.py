"""Making a node's data directory (`dms init`): what is missing is made, what is there
is kept and reported, so running it again is harmless.

Never overwritten: a key (a node's DID is its identity; a lost key is a lost node) and
the config (the operator edits it; one that does not read is reported with its field,
not replaced). Re-made when missing or no longer usable: the owner's grant
(`grants/user.ucan`, `/dms/node` on this node to the `user` key, `USER_GRANT_LIFETIME`),
which is what lets `dms deploy`, `dms node status`, ... act on the node with no flags.
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import yaml

from dms.node._config import (
    DEFAULT_CONFIG_TEXT,
    NODE_KEY,
    USER_KEY,
    DataLayout,
    InvalidNodeConfig,
    NodeConfig,
    read_node_config,
    structure_config,
)
from ucan import Delegation, UcanError, delegate
from ucan.keystore import Keystore

OWNER_COMMAND = "/dms/node"
"""What the node's owner may do on it: everything under `/dms/node` (deploy, status,
peers, resources), nothing in the markets it takes part in."""
USER_GRANT_LIFETIME = 30 * 24 * 3600
USER_GRANT_MARGIN = 24 * 3600
"""A grant expiring sooner than this is issued again."""


class Action(enum.Enum):
    FOUND = "found"
    MADE = "made"
    RENEWED = "renewed"


@attrs.frozen
class InitStep:
    """One thing `dms init` looked at: what it is, where, and what was done."""

    what: str
    path: Path
    action: Action
    detail: str = ""


Passphrase = Callable[[bool], str]
"""Asked for the keys' passphrase (True: a key is being made, so confirm it)."""


def initialize(layout: DataLayout, passphrase: Passphrase,
               clock: Callable[[], float] = time.time,
               settings: Mapping[str, object] | None = None,
               ) -> tuple[NodeConfig, list[InitStep]]:
    """Make what is missing in `layout` (see the module doc) and say what was found.
    `settings` (config keys and values) go into a config made now; a config already
    there is never changed, and the step says they were not applied. Raises
    InvalidNodeConfig for a config that is there but wrong or settings that are,
    the keystore's errors (a wrong passphrase names the key), OSError when a
    directory cannot be made."""
    found = read_node_config(layout.config)  # first: a bad one stops everything
    text = config_text(settings or {})  # and bad settings, before anything is made
    steps: list[InitStep] = []
    for directory in (layout.root, layout.keystore, layout.grants, layout.state):
        steps.append(_directory(directory, "directory"))
    config, step = _config(layout.config, found, text)
    if found is not None and settings:
        step = attrs.evolve(step, detail=f"kept as it is: {', '.join(sorted(settings))} not "
                                         f"applied (edit it)")
    steps.append(step)
    steps.append(_directory(layout.work(config), "work directory"))
    keys = Keystore(layout.keystore)
    asked: list[str] = []

    def secret() -> str:
        if not asked:
            making = not all(keys.path_of(name).exists() for name in (NODE_KEY, USER_KEY))
            asked.append(passphrase(making))
        return asked[0]

    for name in (NODE_KEY, USER_KEY):
        path = keys.path_of(name)
        if path.exists():
            steps.append(InitStep(f"{name} key", path, Action.FOUND, keys.did(name)))
        else:
            entry = keys.create(name, secret())
            steps.append(InitStep(f"{name} key", path, Action.MADE, entry.did))
    steps.append(_owner_grant(layout.user_grant, keys, secret, clock))
    return config, steps


def _directory(path: Path, what: str) -> InitStep:
    if path.is_dir():
        return InitStep(what, path, Action.FOUND)
    path.mkdir(mode=0o700, parents=True)  # FileExistsError when a file is in the way
    return InitStep(what, path, Action.MADE)


def config_text(settings: Mapping[str, object]) -> str:
    """The default config's text with `settings` in place of their defaults (its
    comments kept); InvalidNodeConfig naming the setting when one is wrong."""
    lines = DEFAULT_CONFIG_TEXT.splitlines(keepends=True)
    for key, value in settings.items():
        at = [n for n, line in enumerate(lines) if line.startswith(f"{key}:")]
        if not at:
            raise InvalidNodeConfig(f"$.{key}: not a setting")
        lines[at[0]] = f"{key}: {json.dumps(value)}\n"  # JSON is YAML
    text = "".join(lines)
    structure_config(yaml.safe_load(text))
    return text


def _config(path: Path, found: NodeConfig | None, text: str) -> tuple[NodeConfig, InitStep]:
    if found is not None:
        return found, InitStep("config", path, Action.FOUND)
    # O_EXCL: a config written meanwhile by someone else is theirs, not overwritten
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)
    made = read_node_config(path)
    assert made is not None  # the default text is a valid config (tested)
    return made, InitStep("config", path, Action.MADE)


def _owner_grant(path: Path, keys: Keystore, secret: Callable[[], str],
                 clock: Callable[[], float]) -> InitStep:
    node, user = keys.did(NODE_KEY), keys.did(USER_KEY)
    now = clock()
    held = _read_grant(path)
    usable = (held is not None and held.iss == node and held.aud == user
              and held.sub == node and held.cmd == OWNER_COMMAND
              and (held.exp is None or held.exp > now + USER_GRANT_MARGIN))
    if held is not None and usable:
        return InitStep("owner grant", path, Action.FOUND, _grant_text(held))
    action = Action.RENEWED if path.exists() else Action.MADE
    issued = delegate(keys.load(NODE_KEY, secret()), user, OWNER_COMMAND,
                      expiration=int(now) + USER_GRANT_LIFETIME)
    partial = path.with_name(path.name + ".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(issued.envelope)
    os.replace(partial, path)
    return InitStep("owner grant", path, action, _grant_text(issued))


def _read_grant(path: Path) -> Delegation | None:
    try:
        return Delegation.decode(path.read_bytes())
    except (OSError, UcanError):
        return None


def _grant_text(grant: Delegation) -> str:
    return f"{grant.cmd} to {grant.aud}"
