"""`initialize` (what `dms init` does): makes what is missing, keeps what is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from dms.node._config import DEFAULT_CONFIG_TEXT, DataLayout, InvalidNodeConfig
from dms.node._init import (
    OWNER_COMMAND,
    USER_GRANT_LIFETIME,
    USER_GRANT_MARGIN,
    Action,
    InitStep,
    initialize,
)
from ucan import Delegation
from ucan.keystore import Keystore, WrongPassphrase

PASSPHRASE = "init test"


def actions(steps: list[InitStep]) -> dict[str, Action]:
    return {f"{step.what} {step.path.name}": step.action for step in steps}


def test_a_fresh_directory_gets_config_keys_and_the_owner_grant(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "node")
    asked: list[bool] = []
    _, steps = initialize(layout, lambda making: asked.append(making) or PASSPHRASE)
    assert set(actions(steps).values()) == {Action.MADE}
    assert asked == [True]  # once, and confirmed: keys were being made
    assert layout.config.read_text() == DEFAULT_CONFIG_TEXT
    keys = Keystore(layout.keystore)
    grant = Delegation.decode(layout.user_grant.read_bytes())
    assert (grant.iss, grant.aud, grant.sub, grant.cmd) == (
        keys.did("node"), keys.did("user"), keys.did("node"), OWNER_COMMAND)
    assert (layout.root / "state").is_dir() and (layout.root / "work").is_dir()


def test_running_it_again_changes_nothing_and_asks_nothing(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    initialize(layout, lambda making: PASSPHRASE)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def no_prompt(making: bool) -> str:
        raise AssertionError("asked for a passphrase with nothing to make")

    _, steps = initialize(layout, no_prompt)
    assert set(actions(steps).values()) == {Action.FOUND}
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_an_edited_config_is_kept_and_used(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    layout.config.write_text("provide: cpu=1\nprice: 2\n")
    config, steps = initialize(layout, lambda making: PASSPHRASE)
    assert actions(steps)["config config.yaml"] is Action.FOUND
    assert layout.config.read_text() == "provide: cpu=1\nprice: 2\n"
    assert config.price == 2.0 and config.provide == "cpu=1"


def test_a_bad_config_is_reported_by_field_and_left_alone(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.config.write_text("price: -1\n")
    with pytest.raises(InvalidNodeConfig, match=r"config.yaml: \$.price"):
        initialize(layout, lambda making: PASSPHRASE)
    assert layout.config.read_text() == "price: -1\n"
    assert not (layout.keystore / "node.key").exists()  # nothing made past the mistake


def test_an_existing_key_is_never_replaced(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    keys = Keystore(layout.keystore)
    node = keys.create("node", PASSPHRASE)
    _, steps = initialize(layout, lambda making: PASSPHRASE)
    assert actions(steps)["node key node.key"] is Action.FOUND
    assert actions(steps)["user key user.key"] is Action.MADE
    assert keys.did("node") == node.did


def test_a_wrong_passphrase_for_an_existing_node_key_is_named(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    Keystore(layout.keystore).create("node", PASSPHRASE)
    with pytest.raises(WrongPassphrase, match="node"):
        initialize(layout, lambda making: "not it")


def test_an_owner_grant_about_to_expire_is_renewed(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    start = 1_800_000_000.0
    initialize(layout, lambda making: PASSPHRASE, clock=lambda: start)
    later = start + USER_GRANT_LIFETIME - USER_GRANT_MARGIN + 1
    _, steps = initialize(layout, lambda making: PASSPHRASE, clock=lambda: later)
    assert actions(steps)["owner grant user.ucan"] is Action.RENEWED
    grant = Delegation.decode(layout.user_grant.read_bytes())
    assert grant.exp == int(later) + USER_GRANT_LIFETIME


def test_an_unreadable_owner_grant_is_issued_again(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    initialize(layout, lambda making: PASSPHRASE)
    layout.user_grant.write_bytes(b"junk")
    _, steps = initialize(layout, lambda making: PASSPHRASE)
    assert actions(steps)["owner grant user.ucan"] is Action.RENEWED
    Delegation.decode(layout.user_grant.read_bytes())


def test_settings_go_into_a_config_made_now_and_never_into_one_that_is_there(
        tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "node")
    settings = {"listen": "ws://127.0.0.1:7001", "bootstrap": ["ws://127.0.0.1:7000"],
                "provide": "cpu=1,ram=1Gi", "location": {"continent": "EU", "country": "FR",
                                                         "city": "Paris"}}
    config, _ = initialize(layout, lambda making: PASSPHRASE, settings=settings)
    assert (config.listen, config.bootstrap, config.provide) == (
        "ws://127.0.0.1:7001", ("ws://127.0.0.1:7000",), "cpu=1,ram=1Gi")
    assert config.location.city == "Paris"
    assert "# Where the node listens" in layout.config.read_text()  # its comments kept
    again, steps = initialize(layout, lambda making: PASSPHRASE,
                              settings={"listen": "ws://127.0.0.1:9"})
    assert again.listen == "ws://127.0.0.1:7001"
    assert "kept as it is: listen not applied" in next(
        s.detail for s in steps if s.what == "config")


def test_a_bad_setting_is_named_before_anything_is_made(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "node")
    with pytest.raises(InvalidNodeConfig, match=r"\$\.provide"):
        initialize(layout, lambda making: PASSPHRASE, settings={"provide": "cpu=lots"})
    assert not layout.root.exists()
