"""Command start-up: what `dms` and `ucan` cost before they do anything, against the
floor of a click program (a Python that imports click and exits), in alternating rounds.

Each round runs the floor and then every command once, as fresh processes; a command's
ratio is the median of its per-round ratios to that round's floor. The ceiling is 1.0:
a command that imports nothing but click. `dms status` is a client command against a
node that is not there (port 9 on loopback refuses at once): its import of the node,
the key's decryption and one refused dial. Targets: `dms --version` and `--help` under
0.15 s on a quiet machine (their ratio near 1); `dms status` well under half of what it
was with every command module imported up front.

    .venv/bin/python bench/cli_startup_bench.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
FLOOR = [sys.executable, "-c", "import click"]
COMMANDS = {
    "dms --version": [str(BIN / "dms"), "--version"],
    "dms --help": [str(BIN / "dms"), "--help"],
    "dms validate": [str(BIN / "dms"), "validate", "/nonexistent.yaml"],
    "dms status": [str(BIN / "dms"), "status", "x", "--node", "tcp://127.0.0.1:9",
                   "--as", "me"],
    "ucan --version": [str(BIN / "ucan"), "--version"],
}


def seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "UCAN_KEYSTORE": f"{home}/keys", "UCAN_PASSPHRASE": "bench",
               "DMS_DATA_DIR": f"{home}/data", "UCAN_STORE": f"{home}/tokens"}
        subprocess.run([str(BIN / "ucan"), "key", "new", "me"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        for argv in [FLOOR, *COMMANDS.values()]:  # warm: byte code written, files cached
            seconds(argv, env)
        floors: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.rounds):
            floors.append(seconds(FLOOR, env))
            for name, argv in COMMANDS.items():
                times[name].append(seconds(argv, env))
    print(f"floor (python -c 'import click'): median {statistics.median(floors):.3f} s "
          f"over {args.rounds} rounds; ceiling ratio 1.0")
    for name, measured in times.items():
        ratio = statistics.median(t / f for t, f in zip(measured, floors, strict=True))
        print(f"{name:16} median {statistics.median(measured):.3f} s  "
              f"x{ratio:.2f} the floor")


if __name__ == "__main__":
    main()
