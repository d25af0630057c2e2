"""A node's data directory and its config file: what `dms init` makes and `dms node run
--data-dir` reads.

    DATA_DIR/config.yaml     the node's settings (this module's `NodeConfig`), edited by hand
    DATA_DIR/keys/           the keystore: `node` (the node's key) and `user` (its owner's)
    DATA_DIR/grants/         grants issued by the node (`user.ucan`: the owner's)
    DATA_DIR/state/          the node's state directory (held grants, revocations, anchors,
                             replay ids, deployments)
    DATA_DIR/work/           where a provider's workloads keep their files

The config is YAML read with one cattrs converter (`structure_config`): an unknown key,
a wrong type or a value that does not parse is refused with the path of the field
(`$.location.city`, `$.provide`), never half-used. Every field has a default, so an
empty file is a valid config: a node listening on loopback that provides nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml

from dms._small_file import UnreadableFile, read_small_file
from dms.ensemble._requirements import Location
from dms.net import NetError
from dms.net._address import parse_node_address
from dms.node._offer import InvalidOffer, parse_offer, parse_ports
from dms.provider import OnboardingLimits
from dms.workload import ExecutorKind

CONFIG_FILE = "config.yaml"
MAX_CONFIG_BYTES = 1 << 20
DEFAULT_LISTEN = "tcp://127.0.0.1:7000"
NODE_KEY = "node"
USER_KEY = "user"
LOCATION_FIELDS = ("continent", "country", "city")
ENDED_KEPT = 1000
"""`DeploymentSettings.ended_kept`'s default (not imported: the config module stays
light; a test keeps the two equal)."""


class InvalidNodeConfig(ValueError):
    """A config that cannot be used: the message names the file and the field."""


class _BadSetting(ValueError):
    """A value its field's validator refused; the message starts with the field's path."""

    def __init__(self, attribute: attrs.Attribute[Any], problem: str, at: str = "") -> None:
        super().__init__(f"$.{attribute.name}{at}: {problem}")


def _listen_address(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    try:
        parse_node_address(value, listening=True)
    except NetError as exc:
        raise _BadSetting(attribute, str(exc)) from None


def _addresses(instance: object, attribute: attrs.Attribute[Any],
               value: tuple[str, ...]) -> None:
    for index, address in enumerate(value):
        try:
            parse_node_address(address)
        except NetError as exc:
            raise _BadSetting(attribute, str(exc), at=f"[{index}]") from None


def _offer(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            parse_offer(value)
        except InvalidOffer as exc:
            raise _BadSetting(attribute, str(exc)) from None


def _ports(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            parse_ports(value)
        except InvalidOffer as exc:
            raise _BadSetting(attribute, str(exc)) from None


def _executors(instance: object, attribute: attrs.Attribute[Any],
               value: tuple[str, ...]) -> None:
    known = {kind.value for kind in ExecutorKind}
    for name in value:
        if name not in known:
            raise _BadSetting(attribute, f"unknown executor {name!r}; known executors are "
                                         f"{', '.join(sorted(known))}")


def _price(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise _BadSetting(attribute, f"must be a number >= 0, got {value!r}")


def _ended_kept(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise _BadSetting(attribute, f"must be a whole number of deployments >= 1, got {value!r}")


@attrs.frozen
class NodeConfig:
    """What `dms node run --data-dir` runs; each field can be overridden by its flag."""

    listen: str = attrs.field(default=DEFAULT_LISTEN, validator=_listen_address)
    bootstrap: tuple[str, ...] = attrs.field(default=(), validator=_addresses)
    provide: str | None = attrs.field(default=None, validator=_offer)
    """What to offer, as `--provide` spells it; None: not a provider."""
    executors: tuple[str, ...] = attrs.field(default=(ExecutorKind.PROCESS.value,),
                                             validator=_executors)
    price: float = attrs.field(default=0.0, validator=_price)
    ports: str | None = attrs.field(default=None, validator=_ports)
    """Host ports workloads may publish, as `--ports` spells it; None: none."""
    location: Location = Location()
    keep_workloads: bool = False
    work_dir: str | None = None
    """Relative paths are taken from the data directory (default `work`)."""
    ended_kept: int = attrs.field(default=ENDED_KEPT, validator=_ended_kept)
    """Ended deployments the node keeps on record (`DeploymentSettings.ended_kept`)."""

    @property
    def offer(self) -> OnboardingLimits | None:
        return None if self.provide is None else parse_offer(self.provide)

    @property
    def public_ports(self) -> frozenset[int]:
        return frozenset() if self.ports is None else parse_ports(self.ports)


def parse_location(text: str) -> Location:
    """`CONTINENT/COUNTRY/CITY` (the later parts may be left out: `EU`, `EU/DE`); an
    empty part is unknown (`EU//Berlin`). ValueError naming the problem otherwise."""
    parts = [part.strip() for part in text.split("/")]
    if len(parts) > len(LOCATION_FIELDS):
        raise ValueError(f"{text!r} has {len(parts)} parts; give CONTINENT/COUNTRY/CITY")
    if not any(parts):
        raise ValueError(f"{text!r} names no place; give CONTINENT/COUNTRY/CITY")
    parts += [""] * (len(LOCATION_FIELDS) - len(parts))
    return Location(continent=parts[0] or None, country=parts[1] or None, city=parts[2] or None)


def describe_location(place: Location) -> str:
    """`EU/DE/Berlin`, as `--location` takes it ('' for an unknown place)."""
    parts = [getattr(place, name) or "" for name in LOCATION_FIELDS]
    return "/".join(parts).rstrip("/")


_converter = cattrs.Converter(forbid_extra_keys=True)


def _text(value: object, _: type) -> str:
    if not isinstance(value, str):  # cattrs would turn 1 into "1"
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _number(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _flag(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type(value).__name__}")
    return value


def _whole(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {type(value).__name__}")
    return value


def _sequence(value: object, _: type) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return tuple(_text(item, str) for item in value)


_converter.register_structure_hook(str, _text)
_converter.register_structure_hook(float, _number)
_converter.register_structure_hook(bool, _flag)
_converter.register_structure_hook(int, _whole)
_converter.register_structure_hook_func(lambda kind: kind == tuple[str, ...], _sequence)


def structure_config(raw: object) -> NodeConfig:
    """A config from its parsed YAML; InvalidNodeConfig listing each problem with its
    path (`$.price: must be a number >= 0, got -1.0`)."""
    if raw is None:
        return NodeConfig()
    if not isinstance(raw, dict):
        raise InvalidNodeConfig(f"expected a mapping of settings, got {type(raw).__name__}")
    try:
        return _converter.structure(raw, NodeConfig)
    except cattrs.BaseValidationError as exc:
        raise InvalidNodeConfig("; ".join(_problems(exc))) from None
    except (TypeError, ValueError) as exc:
        raise InvalidNodeConfig(str(exc)) from None


def _problems(exc: cattrs.BaseValidationError) -> list[str]:
    """Each problem as `$.path: what is wrong`."""
    def said(problem: BaseException, kind: type | None) -> str:
        if isinstance(problem, _BadSetting):
            return str(problem)
        if isinstance(problem, cattrs.ForbiddenExtraKeysError):
            known = ", ".join(field.name for field in attrs.fields(problem.cl))
            return f"unknown key {', '.join(sorted(problem.extra_fields))} (known: {known})"
        if isinstance(problem, ValueError) and not isinstance(problem, cattrs.BaseValidationError):
            return str(problem)
        return cattrs.v.format_exception(problem, kind)

    found = []
    for line in cattrs.transform_error(exc, format_exception=said):
        problem, _, path = line.rpartition(" @ ")
        found.append(problem if problem.startswith("$.") else f"{path}: {problem}")
    return found


def unstructure_config(config: NodeConfig) -> dict[str, Any]:
    raw: dict[str, Any] = _converter.unstructure(config)
    raw["bootstrap"] = list(config.bootstrap)
    raw["executors"] = list(config.executors)
    return raw


def read_node_config(path: Path) -> NodeConfig | None:
    """The config at `path`, None when there is none; InvalidNodeConfig (naming the file
    and the field) when it is there but unreadable or wrong."""
    try:
        data = read_small_file(path, MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        raise InvalidNodeConfig(str(exc)) from None
    if data is None:
        return None
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidNodeConfig(f"{path}: not YAML: {' '.join(str(exc).split())}") from None
    try:
        return structure_config(raw)
    except InvalidNodeConfig as exc:
        raise InvalidNodeConfig(f"{path}: {exc}") from None


DEFAULT_CONFIG_TEXT = f"""\
# The node's settings, read by `dms node run --data-dir DIR` (its flags override them).
# Made by `dms init`, which never overwrites this file once it is there: edit it freely.

# Where the node listens: tcp://HOST:PORT (the link between nodes) or ws://HOST:PORT
# (websocket, for proxies and browsers); 0.0.0.0 for every interface.
listen: {DEFAULT_LISTEN}
# Peers to dial when the node starts, each over the link its scheme names:
# [tcp://HOST:PORT, ws://HOST:PORT/PATH, ...]
bootstrap: []
# What to offer of this machine to deployments, e.g. cpu=2,ram=4Gi,disk=20Gi,gpus=0
# (a value may be a share: cpu=50%), or `all`; null: this node is not a provider.
provide: null
# Executors to offer when providing: process, docker, firecracker.
executors: [process]
# The price bid for hosting one ensemble node.
price: 0.0
# Host ports workloads may publish (an ensemble's `ports`), e.g. 8000-8999,9100; null: none.
ports: null
# Where this machine is, matched against ensembles' location constraints.
location: {{continent: null, country: null, city: null}}
# Leave workloads running when the node stops, to re-adopt them at the next start.
keep_workloads: false
# Where workloads keep their files (relative to the data directory).
work_dir: work
# Ended (completed or failed) deployments the node keeps on record, the newest; older
# ones are pruned as others end (`dms status ID` of a pruned one: unknown).
ended_kept: {ENDED_KEPT}
"""


@attrs.frozen
class DataLayout:
    """Where a node's files are in its data directory (see the module doc)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def keystore(self) -> Path:
        return self.root / "keys"

    @property
    def grants(self) -> Path:
        return self.root / "grants"

    @property
    def user_grant(self) -> Path:
        return self.grants / f"{USER_KEY}.ucan"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def work(self, config: NodeConfig) -> Path:
        return self.root / (config.work_dir or "work")
