"""The node config (`config.yaml` in a data directory): its defaults, and a bad one
refused with the path of the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dms.deployment import DeploymentSettings
from dms.ensemble._requirements import Location
from dms.node._config import (
    DEFAULT_CONFIG_TEXT,
    InvalidNodeConfig,
    NodeConfig,
    describe_location,
    parse_location,
    read_node_config,
    structure_config,
)


def test_the_default_text_is_the_default_config() -> None:
    assert structure_config(yaml.safe_load(DEFAULT_CONFIG_TEXT)) == NodeConfig(work_dir="work")


def test_the_ended_deployments_kept_default_to_the_deployment_settings() -> None:
    assert NodeConfig().ended_kept == DeploymentSettings().ended_kept


def test_a_new_config_listens_on_tcp_and_an_old_ws_config_still_reads() -> None:
    assert structure_config(yaml.safe_load(DEFAULT_CONFIG_TEXT)).listen == "tcp://127.0.0.1:7000"
    old = structure_config({"listen": "ws://127.0.0.1:7000", "bootstrap": ["ws://10.0.0.1:7000"]})
    assert (old.listen, old.bootstrap) == ("ws://127.0.0.1:7000", ("ws://10.0.0.1:7000",))


def test_an_empty_file_is_a_node_that_provides_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("")
    config = read_node_config(path)
    assert config == NodeConfig() and config.offer is None


def test_a_missing_file_is_no_config(tmp_path: Path) -> None:
    assert read_node_config(tmp_path / "config.yaml") is None


def test_settings_are_read() -> None:
    config = structure_config({"listen": "ws://0.0.0.0:7001", "bootstrap": ["ws://10.0.0.1:7000"],
                               "provide": "cpu=2,ram=4Gi", "executors": ["process", "docker"],
                               "price": 3, "location": {"continent": "EU", "city": "Berlin"},
                               "keep_workloads": True, "ended_kept": 20})
    assert config.bootstrap == ("ws://10.0.0.1:7000",) and config.ended_kept == 20
    assert config.offer is not None and config.price == 3.0 and config.keep_workloads
    assert config.location == Location(continent="EU", city="Berlin")


@pytest.mark.parametrize(("raw", "named"), [
    ({"price": -1}, "$.price: must be a number >= 0"),
    ({"price": "cheap"}, "$.price: expected a number"),
    ({"listen": "http://x:1"}, "$.listen: bad address"),
    ({"bootstrap": "ws://a:1"}, "$.bootstrap: expected a list"),
    ({"bootstrap": ["tcp://a:1", "nowhere"]}, "$.bootstrap[1]: bad address 'nowhere'"),
    ({"listen": "ws://a:1/dms"}, "$.listen: bad address 'ws://a:1/dms': a node listens on"),
    ({"provide": "cpu=lots"}, "$.provide: cpu=lots"),
    ({"executors": ["dockr"]}, "$.executors: unknown executor 'dockr'"),
    ({"location": {"city": 3}}, "$.location.city: expected a string"),
    ({"location": {"town": "Berlin"}}, "$.location: unknown key town"),
    ({"lisen": "ws://a:1"}, "$: unknown key lisen"),
    ({"keep_workloads": "yes"}, "$.keep_workloads: expected true or false"),
    ({"ended_kept": 0}, "$.ended_kept: must be a whole number of deployments >= 1, got 0"),
    ({"ended_kept": 2.5}, "$.ended_kept: expected a whole number, got float"),
    ({"ended_kept": True}, "$.ended_kept: expected a whole number, got bool"),
])
def test_a_bad_setting_is_refused_naming_its_field(raw: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidNodeConfig) as refused:
        structure_config(raw)
    assert named in str(refused.value)


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(InvalidNodeConfig) as refused:
        structure_config({"listen": 1, "price": "x"})
    assert "$.listen" in str(refused.value) and "$.price" in str(refused.value)


def test_a_file_that_is_not_a_mapping_or_not_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- a list\n")
    with pytest.raises(InvalidNodeConfig, match=f"{path}: expected a mapping"):
        read_node_config(path)
    path.write_text("listen: [unclosed\n")
    with pytest.raises(InvalidNodeConfig, match=f"{path}: not YAML"):
        read_node_config(path)


@pytest.mark.parametrize(("text", "place"), [
    ("EU/DE/Berlin", Location(continent="EU", country="DE", city="Berlin")),
    ("EU", Location(continent="EU")),
    ("EU//Berlin", Location(continent="EU", city="Berlin")),
])
def test_a_location_flag_reads_continent_country_city(text: str, place: Location) -> None:
    assert parse_location(text) == place
    assert describe_location(place) == text


@pytest.mark.parametrize("text", ["", "//", "EU/DE/Berlin/Mitte"])
def test_a_location_flag_that_names_no_place_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="CONTINENT/COUNTRY/CITY"):
        parse_location(text)
