"""The `dms` console script, before anything heavy: importing the node takes about half
a second, and Ctrl-C in that half second must end the command like any other Ctrl-C
(`interrupted`, exit 130), not with a traceback of whatever module was loading."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from dms.cli import main as dms
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    dms()
