"""`make run-docker`'s script: hello-web with its web service in a docker container
(published on a provider's port), its client a process on another provider."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest

from .conftest import ROOT, environment, gone_within

IMAGE = "dms-test/busybox:latest"  # built by .ci/engines; it has busybox's httpd


@pytest.fixture
def engine() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"test image {IMAGE} missing (built by .ci/engines from busybox-static)")
    except docker.errors.DockerException as error:
        pytest.skip(f"docker engine not reachable: {error} (run `make engines`)")
    return client


def test_make_run_dockers_script_serves_from_a_container_and_leaves_nothing_running(
        tmp_path: Path, engine: docker.DockerClient) -> None:
    env = environment(tmp_path)
    del env["DMS_DATA_DIR"]
    env["DMS_DEMO_IMAGE"] = IMAGE
    result = subprocess.run([sys.executable, "examples/hello_web.py", "--docker",
                             "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "$ dms dev --executor process --executor docker" in out
    assert "web on provider" in out and "running (docker)" in out
    assert "| hello from web in docker" in out
    assert "completed: shutdown requested" in out
    assert gone_within(tmp_path, 10) == []
    assert engine.containers.list(all=True, filters={"ancestor": IMAGE,
                                                     "label": "dms.allocation"}) == []
