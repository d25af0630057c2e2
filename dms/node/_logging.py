"""Where a running node's log records go: stderr, as text or (with `--json`) as one JSON
object per line, so that a supervisor or a log shipper reads them without parsing
prose. Status lines (`listening`, `peers`, `stopped`) stay on stdout.

    {"time": 1733112000.123, "level": "WARNING", "logger": "dms.provider",
     "message": "executor docker left out: ..."}
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator

NODE_LOGGER = "dms"
LEVEL = logging.INFO


class JsonLines(logging.Formatter):
    """One record, one line of JSON (an exception's traceback goes in `exception`)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": round(record.created, 3), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


PLAIN = logging.Formatter("%(levelname)s %(name)s: %(message)s")


@contextlib.contextmanager
def node_logging(as_json: bool) -> Iterator[logging.Handler]:
    """Send the `dms` loggers' records (INFO and up) to stderr for the block."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if as_json else PLAIN)
    logger = logging.getLogger(NODE_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(LEVEL)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
