"""`make run`: a local network, a deployment across two providers, its status, its
shutdown, and the network stopped, with the `dms` commands a user would type.

    python examples/hello_web.py [--data-dir DIR] [--docker [--image IMAGE] | --network]

1. `dms dev` in the background: an orchestrator and three providers on 127.0.0.1, the
   organisation's grants made (printed as `ucan` commands), a client config written.
2. `dms deploy examples/ensembles/hello-web.yaml --wait`: a web service with an http
   health check on one provider, a task on another that calls it and prints the answer.
3. `dms status`, `dms status ID`: the placement, the health, the task's output.
4. `dms shutdown ID --wait`, then Ctrl-C (SIGINT) to `dms dev`: nothing is left running.

With `--docker` (`make run-docker`) the providers offer docker too and the web service
runs in a container (`hello-web-docker.yaml`, image `busybox:stable` unless `--image`
or $DMS_DEMO_IMAGE names another one that has busybox's httpd).

With `--network` (`make run-network`; root, /dev/net/tun and iproute2) the providers
host the ensemble network (`dms dev --network`) and `hello-internal.yaml` is deployed:
each allocation in a namespace of its own with a 10/8 address, the client calling
`http://web.internal:8765/` across providers; `dms status ID` shows both addresses,
and `dms join ID -- curl http://web.internal:8765/` reads web from the orchestrator
node's own namespace in the network.

The network's files go in a temporary directory (removed at the end) unless
`--data-dir` names one, so the demo never touches your own `~/.local/share/dms`.
Exit status 0 when every step did what it should.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENSEMBLE = HERE / "ensembles" / "hello-web.yaml"
DOCKER_ENSEMBLE = HERE / "ensembles" / "hello-web-docker.yaml"
NETWORK_ENSEMBLE = HERE / "ensembles" / "hello-internal.yaml"
DOCKER_IMAGE = "busybox:stable"  # the image hello-web-docker.yaml names
DMS = str(Path(sys.executable).with_name("dms"))
STEP_TIMEOUT = 60
DEV_READY_TIMEOUT = 60


def show(argv: list[str]) -> None:
    print(f"\n$ {shlex.join(['dms', *argv[1:]])}", flush=True)


def dms(*args: str, env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [DMS, *args]
    if not capture:
        show(argv)
    try:
        result = subprocess.run(argv, env=env, text=True, timeout=STEP_TIMEOUT,
                                stdout=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"`{shlex.join(['dms', *args])}` took over {STEP_TIMEOUT} s") from None
    if result.returncode != 0:
        raise SystemExit(f"`{shlex.join(['dms', *args])}` exited with {result.returncode}")
    return result


def start_dev(env: dict[str, str], docker: bool, network: bool = False) -> subprocess.Popen[str]:
    argv = [DMS, "dev"]  # three providers by default
    if docker:
        argv += ["--executor", "process", "--executor", "docker"]
    if network:
        argv += ["--network"]
    show(argv)
    print("(in the background; Ctrl-C would stop it)", flush=True)
    dev = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert dev.stdout is not None
    ends = time.monotonic() + DEV_READY_TIMEOUT
    for line in dev.stdout:
        print(f"  {line.rstrip()}", flush=True)
        if line.startswith("ready:"):
            return dev
        if time.monotonic() > ends:
            break
    stop_dev(dev)
    raise SystemExit("`dms dev` did not get ready")


def stop_dev(dev: subprocess.Popen[str]) -> int:
    if dev.poll() is None:
        dev.send_signal(signal.SIGINT)  # what Ctrl-C sends
    try:
        out, _ = dev.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        dev.kill()
        out, _ = dev.communicate()
    for line in (out or "").splitlines():
        print(f"  {line}", flush=True)
    return dev.wait()


PORT = 8765  # the port hello-web.yaml names
DEV_PORTS = range(8000, 9000)  # the ports `dms dev`'s providers let workloads publish


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ensemble_to_deploy(scratch: str, ensemble: Path, image: str | None) -> str:
    """`ensemble` as written, or a copy: on a free port when its port is taken on this
    machine (another demo running, say: the demo must not fail for that), and with
    `image` for the docker variant's."""
    shown = str(ensemble.relative_to(Path.cwd()) if ensemble.is_relative_to(Path.cwd())
                else ensemble)
    text = ensemble.read_text()
    port = next(p for p in (PORT, *DEV_PORTS) if _free(p))
    if port == PORT and image in (None, DOCKER_IMAGE):
        return shown
    if port != PORT:
        text = text.replace(str(PORT), str(port))
        print(f"(port {PORT} is taken here: deploying a copy of {shown} on port {port})",
              flush=True)
    if image not in (None, DOCKER_IMAGE):
        text = text.replace(f"image: {DOCKER_IMAGE}", f"image: {image}")
        print(f"(deploying a copy of {shown} with image {image})", flush=True)
    copy = Path(scratch) / ensemble.name
    copy.write_text(text)
    return str(copy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="where the dev network keeps its files")
    parser.add_argument("--docker", action="store_true",
                        help="run the web service in a docker container")
    parser.add_argument("--image", default=os.environ.get("DMS_DEMO_IMAGE"),
                        help=f"the web service's image with --docker (default {DOCKER_IMAGE})")
    parser.add_argument("--network", action="store_true",
                        help="over the ensemble network: the client calls web.internal")
    options = parser.parse_args()
    if options.docker and options.network:
        parser.error("--docker and --network: one or the other (no demo ensemble has both)")
    ensemble = (DOCKER_ENSEMBLE if options.docker else
                NETWORK_ENSEMBLE if options.network else ENSEMBLE)
    image = options.image if options.docker else None
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dms-demo-") as scratch:
        data_dir = options.data_dir or scratch
        env = {**os.environ, "DMS_DATA_DIR": data_dir,
               "UCAN_PASSPHRASE": os.environ.get("UCAN_PASSPHRASE", "make-run-demo")}
        dev = start_dev(env, options.docker, options.network)
        try:
            # In its namespace the web service's port is its own: no host port to dodge.
            dms("deploy", str(ensemble) if options.network else
                ensemble_to_deploy(scratch, ensemble, image), "--wait", env=env)
            listed = json.loads(dms("list", "--json", env=env, capture=True).stdout)
            deployment = listed[-1]["id"]
            dms("status", env=env)
            dms("status", deployment, env=env)
            if options.network:  # subnet.join: the orchestrator node's own namespace
                dms("join", deployment, "--", "curl", "-sS", "-m", "5",
                    "http://web.internal:8765/", env=env)
            dms("shutdown", deployment, "--wait", env=env)
        finally:
            print("\n(Ctrl-C to `dms dev`)", flush=True)
            status = stop_dev(dev)
        if status != 0:
            raise SystemExit(f"`dms dev` exited with {status}")
    print(f"\ndone in {time.monotonic() - began:.1f} s; nothing is left running", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
