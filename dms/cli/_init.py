"""`dms init`: make a node's data directory, or say what is already in it.

    dms init [--data-dir D] [--listen tcp://HOST:PORT] [--bootstrap ADDR ...]
             [--provide OFFER] [--ports PORTS] [--location C/C/C] [--json]

Makes the directories, a commented `config.yaml` with the defaults (or the settings
given as flags: a config already there is never changed), the node key and
the owner's `user` key (passphrase-protected, from $UCAN_PASSPHRASE or a prompt), and
the owner's grant of `/dms/node` on the node (see `dms.node._init`). Running it again
changes nothing that is there; each line says what was found and what was made.
Then `dms node run --data-dir D` runs the node, and `dms node status --data-dir D`
(or any command that talks to a node) reaches it as the owner with no other flag.
"""

from __future__ import annotations

import json

import click

from dms.node._config import DataLayout, InvalidNodeConfig, parse_location
from dms.node._init import config_text, initialize
from ucan.keystore import KeystoreError, resolve_passphrase

from ._config import data_directory
from ._errors import EXIT_INTERRUPTED, Mistake

KEYS = "the node's keys"


@click.command("init")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="The node's data directory (default $DMS_DATA_DIR or ~/.local/share/dms).")
@click.option("--listen", metavar="ADDR", help="The config's listen address, tcp://HOST:PORT or ws://HOST:PORT.")
@click.option("--bootstrap", multiple=True, metavar="ADDR", help="A peer to dial (repeat).")
@click.option("--provide", metavar="OFFER",
              help="Be a provider offering this: cpu=2,ram=4Gi,disk=20Gi (or `all`).")
@click.option("--ports", metavar="PORTS", help="Host ports workloads may publish: 8000-8999.")
@click.option("--location", metavar="CONTINENT/COUNTRY/CITY", help="Where this node is.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as one JSON object.")
def init(data_dir: str | None, listen: str | None, bootstrap: tuple[str, ...],
         provide: str | None, ports: str | None, location: str | None,
         as_json: bool) -> None:
    """Make a node's data directory: config, keys, the owner's grant. Idempotent: never
    overwrites a key or the config. Exit 0 done, 2 on a config that does not read (its
    field is named), a wrong passphrase or a directory that cannot be made."""
    layout = DataLayout(data_directory(data_dir))
    settings: dict[str, object] = {key: value for key, value in (
        ("listen", listen), ("bootstrap", list(bootstrap) or None), ("provide", provide),
        ("ports", ports)) if value is not None}
    if location is not None:
        try:
            place = parse_location(location)
        except ValueError as exc:
            raise Mistake(f"--location: {exc}") from None
        settings["location"] = {"continent": place.continent, "country": place.country,
                                "city": place.city}
    try:
        config_text(settings)
    except InvalidNodeConfig as exc:
        raise Mistake(f"--{str(exc).removeprefix('$.')}") from None
    try:
        config, steps = initialize(layout, lambda making: resolve_passphrase(
            KEYS, confirm=making), settings=settings)
    except InvalidNodeConfig as exc:
        raise Mistake(f"config {exc} (fix it, or move it away for a fresh one)") from None
    except KeystoreError as exc:
        raise Mistake(f"{exc} (the keys are in {layout.keystore})") from None
    except OSError as exc:
        raise Mistake(f"cannot make {exc.filename or layout.root}: "
                      f"{exc.strerror or exc}") from None
    except (KeyboardInterrupt, EOFError):  # at the passphrase prompt
        click.echo("interrupted", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    if as_json:
        click.echo(json.dumps({"data_dir": str(layout.root), "steps": [
            {"what": step.what, "path": str(step.path), "action": step.action.value,
             "detail": step.detail} for step in steps]}))
        return
    for step in steps:
        detail = f" ({step.detail})" if step.detail else ""
        click.echo(f"{step.action.value:>7} {step.what}: {step.path}{detail}")
    role = f"provider offering {config.provide}" if config.provide else "not a provider"
    click.echo(f"node data directory {layout.root} ready ({role}; edit {layout.config} to "
               f"change); run it with `dms node run --data-dir {layout.root}`")
