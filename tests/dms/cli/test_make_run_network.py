"""`make run-network`'s script: hello-internal across two providers of `dms dev
--network`, the client reaching the web service by `web.internal`, both addresses in
`dms status ID`, `dms join ID -- curl` from the orchestrator node, and no namespace, process or /etc/netns entry left after."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dms.network import missing_capability, namespace_names

from .conftest import ROOT, environment, gone_within

PROVIDER_NAMESPACE = re.compile(r"dmsj?[0-9a-f]{6}-[0-9a-f]{12}")  # providers and joins


def provider_namespaces() -> set[str]:
    return {name for name in [*namespace_names(),
                              *(p.name for p in Path("/etc/netns").glob("*"))]
            if PROVIDER_NAMESPACE.fullmatch(name)}


@pytest.mark.skipif(missing_capability() is not None,
                    reason=f"the ensemble network {missing_capability()}")
def test_make_run_network_reaches_web_by_its_internal_name_and_leaves_nothing(
        tmp_path: Path) -> None:
    before = provider_namespaces()
    env = environment(tmp_path)
    del env["DMS_DATA_DIR"]  # the script picks its own
    result = subprocess.run([sys.executable, "examples/hello_web.py", "--network",
                             "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "$ dms dev --network" in out and "hello-internal.yaml --wait" in out
    assert "| hello from web, over the ensemble network" in out
    placement = next(line for line in out.splitlines() if line.startswith("placement:"))
    assert len({part.rsplit("→", 1)[1].strip() for part in placement.split(",")}) == 2
    subnet = next(line for line in out.splitlines() if line.startswith("network:"))
    prefix = re.fullmatch(r"network: (10\.\d+\.\d+)\.0/24", subnet.strip())
    assert prefix, subnet
    rows = {m.group(1): m.group(2) for m in re.finditer(
        rf"^(web|client) +({re.escape(prefix.group(1))}\.\d+) \1\.internal ", out, re.M)}
    assert set(rows) == {"web", "client"} and rows["web"] != rows["client"]
    joined = out.split("$ dms join", 1)[1].split("$ dms shutdown", 1)[0]
    assert "hello from web, over the ensemble network" in joined  # curl'd from the join
    assert "completed: shutdown requested" in out
    assert gone_within(tmp_path, 10) == []
    assert provider_namespaces() - before == set()
