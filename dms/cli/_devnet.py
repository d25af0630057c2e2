"""The keys and grants of a `dms dev` network, as an operator would make them by hand.

An organisation key (`org`) is the market's root: every node anchors it; it grants
each node `/dms/deployment` (the orchestrator asks for bids with it, the providers bid
with it) and the user what `dms deploy`, `dms status`, ... and `dms node status`,
`dms peers`, `dms resources` ask of the orchestrator node: `/dms/node/deployment`,
`/dms/node/info`, `/dms/node/peers` and `/dms/node/resources`, one grant each, not all
of `/dms/node` (whatever is added under it later is not given by default). Keys are made once and kept (never overwritten); the grants are
issued again at every start, for `GRANT_LIFETIME`, so a dev network never relies on
an old one; the nodes' state starts empty every time (a dev network is fresh, as
`nomad agent -dev` is: no deployment of a previous run comes back). Everything sits
under one directory:

    DIR/keys/{org,user,orchestrator,provider1,...}.key     the keystore
    DIR/grants/{orchestrator,provider1,...,user}.ucan      raw delegations (user.ucan:
    DIR/grants/user-{info,peers,resources}.ucan            deploying; the others: looking)
    DIR/nodes/NAME/                                        each node's state directory

`commands` are the `ucan` command lines that make the same keys and grants, printed
for the operator who wants to build such a network by hand.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from ucan import delegate
from ucan.keystore import Keystore

ORG = "org"
USER = "user"
ORCHESTRATOR = "orchestrator"
NODE_COMMAND = "/dms/deployment"
USER_COMMAND = "/dms/node/deployment"
USER_LOOKS = ("/dms/node/info", "/dms/node/peers", "/dms/node/resources")
"""What the user may see of the orchestrator node besides its deployments."""
GRANT_LIFETIME = 7 * 24 * 3600
GRANT_LIFETIME_TEXT = "7d"  # the same, as `ucan grant --exp` spells it


@attrs.frozen
class DevLayout:
    """Where a dev network of `providers` provider nodes keeps its files."""

    root: Path
    providers: int

    @property
    def keystore(self) -> Path:
        return self.root / "keys"

    @property
    def nodes(self) -> tuple[str, ...]:
        return (ORCHESTRATOR, *(f"provider{n}" for n in range(1, self.providers + 1)))

    def state_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def grant_file(self, name: str) -> Path:
        return self.root / "grants" / f"{name}.ucan"

    @property
    def user_grants(self) -> tuple[tuple[str, str], ...]:
        """(grant file name, command) of each of the user's grants."""
        return ((USER, USER_COMMAND), *((f"{USER}-{command.rsplit('/', 1)[1]}", command)
                                        for command in USER_LOOKS))


@attrs.frozen
class DevNetwork:
    layout: DevLayout
    dids: dict[str, str]  # key name -> DID
    created: tuple[str, ...]  # keys made now (the others were there)
    commands: tuple[str, ...]


def prepare_network(layout: DevLayout, passphrase: str) -> DevNetwork:
    """Make the keys that are missing, empty the nodes' state and issue the grants (see
    the module doc); the caller holds the network's directory. Raises the keystore's
    errors (a wrong passphrase names the key it did not open)."""
    store = Keystore(layout.keystore)
    names = (ORG, USER, *layout.nodes)
    created = []
    for name in names:
        if not store.path_of(name).exists():
            store.create(name, passphrase)
            created.append(name)
    org = store.load(ORG, passphrase)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(layout.root / "nodes")
    dids = {name: store.did(name) for name in names}
    expiration = int(time.time()) + GRANT_LIFETIME
    grants = [(node, node, NODE_COMMAND) for node in layout.nodes] + [
        (file, USER, command) for file, command in layout.user_grants]
    for file, name, command in grants:
        issued = delegate(org, dids[name], command, expiration=expiration)
        _write_private(layout.grant_file(file), issued.envelope)
    return DevNetwork(layout, dids, tuple(created), _commands(layout, dids, names, grants))


def _commands(layout: DevLayout, dids: dict[str, str], names: Sequence[str],
              grants: Sequence[tuple[str, str, str]]) -> tuple[str, ...]:
    lines = [f"export UCAN_KEYSTORE={shlex.quote(str(layout.keystore))}"]
    lines += [f"ucan key new {name}" for name in names]
    lines += [f"ucan grant --as {ORG} --aud {dids[name]} --cmd {command} "
              f"--exp {GRANT_LIFETIME_TEXT} -o {shlex.quote(str(layout.grant_file(file)))}"
              for file, name, command in grants]
    return tuple(lines)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(data)
    os.replace(partial, path)
