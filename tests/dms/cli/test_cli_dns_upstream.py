"""`--network-dns-upstream IP[:PORT]` of `dms node run` and `dms dev`: where a
provider's ensemble resolvers forward names outside `.internal`. A wrong value, or
one without `--network`, is one line and exit 2 before anything starts; a right one
reaches `ProviderConfig.network_dns_upstream`."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dms.cli import main
from dms.network import DnsUpstream
from dms.node import _command

from .conftest import environment
from .test_cli_init_cap import one_line_error

PROVIDER = ["node", "run", "--ephemeral", "--provide", "cpu=1,ram=1Gi,disk=1Gi"]


def run(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=environment(tmp_path),
                              catch_exceptions=False)


@pytest.mark.parametrize(("value", "says"), [
    ("dns.example", "'dns.example' is not an IP address"),
    ("9.9.9.9:x", "port 'x' is not a number"),
])
def test_a_wrong_upstream_is_one_line_naming_the_flag_and_exit_2(
        tmp_path: Path, value: str, says: str) -> None:
    result = run(tmp_path, *PROVIDER, "--network", "--network-dns-upstream", value)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "--network-dns-upstream" in line and says in line


def test_an_upstream_without_the_network_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, *PROVIDER, "--network-dns-upstream", "9.9.9.9")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "--network-dns-upstream" in line and "--network" in line.split(":", 1)[1]


def test_dev_refuses_an_upstream_without_the_network(tmp_path: Path) -> None:
    result = run(tmp_path, "dev", "--network-dns-upstream", "9.9.9.9")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "--network-dns-upstream" in line and "add --network" in line


def test_an_upstream_reaches_the_providers_config(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_run_trio(main: Any, *args: Any) -> int:
        seen.extend(arg for arg in args if isinstance(arg, _command.ProviderConfig))
        return 0

    monkeypatch.setattr(_command, "run_trio", fake_run_trio)
    result = run(tmp_path, *PROVIDER, "--network", "--network-dns-upstream", "9.9.9.9:5353")
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert config.network and config.network_dns_upstream == DnsUpstream(
        ip_address("9.9.9.9"), 5353)
