"""Health check definitions and the ledger that turns probe results into a health state.

Fields follow the NuNet ensemble v1 `healthcheck` (type command|http|tcp, exec or
script, endpoint, response, interval, timeout, retries) plus docker's start_period: failures
during the start period do not count, a success ends it. The ledger is sans-IO: it is
fed results and times and says when the state changes, so it is tested without a clock.
"""

from __future__ import annotations

import collections
import enum
import re
from urllib.parse import urlsplit

import attrs

from dms.workload import ResponseMatch

# A regex response is a short pattern from the ensemble file, searched in at most
# 64 KiB of output: bounding the pattern bounds what one probe can cost.
MAX_PATTERN = 256
SCRIPT_SHELL = ("/bin/sh", "-c")


class InvalidHealthCheck(ValueError):
    """A health check definition is unusable; the message names the field."""


@attrs.frozen
class ExpectedResponse:
    """What a probe's output (command) or body (http) must be, per `match`:

    - `string`: equal to `value` once surrounding whitespace is stripped from both, so
      `echo ok` (which prints `ok\n`) matches `ok`;
    - `contains`: `value` occurs in the output, as given;
    - `regex`: `re.search(value, output)` finds a match; the pattern must compile and be
      at most `MAX_PATTERN` characters.
    """

    value: str
    match: ResponseMatch = ResponseMatch.CONTAINS

    def __attrs_post_init__(self) -> None:
        if self.match is not ResponseMatch.REGEX:
            return
        if len(self.value) > MAX_PATTERN:
            raise InvalidHealthCheck(
                f"healthcheck.response.value: regex of {len(self.value)} characters "
                f"exceeds {MAX_PATTERN}"
            )
        try:
            re.compile(self.value)
        except re.error as error:
            raise InvalidHealthCheck(
                f"healthcheck.response.value: {self.value!r} is not a regex: {error}"
            ) from None

    def matches(self, output: str) -> bool:
        match self.match:
            case ResponseMatch.STRING:
                return output.strip() == self.value.strip()
            case ResponseMatch.CONTAINS:
                return self.value in output
            case ResponseMatch.REGEX:
                return re.search(self.value, output) is not None

    def mismatch(self) -> str:
        """How output that does not match falls short, for a probe result's detail."""
        return {
            ResponseMatch.STRING: f"is not {self.value.strip()!r}",
            ResponseMatch.CONTAINS: f"does not contain {self.value!r}",
            ResponseMatch.REGEX: f"does not match {self.value!r}",
        }[self.match]


@attrs.frozen
class CommandProbe:
    """Healthy when `exec` exits 0 (inside the workload) and its output is as `response` says."""

    exec: tuple[str, ...]
    response: ExpectedResponse | None = None

    def __attrs_post_init__(self) -> None:
        if not self.exec:
            raise InvalidHealthCheck("healthcheck.exec: a command check needs a command")

    @classmethod
    def script(cls, text: str, response: ExpectedResponse | None = None) -> CommandProbe:
        """A health check script (the ensemble's `healthcheck.script`), run by `/bin/sh -c`
        where a command probe runs, its exit code and output judged alike."""
        if not text.strip():
            raise InvalidHealthCheck("healthcheck.script: the script is empty")
        return cls(exec=(*SCRIPT_SHELL, text), response=response)


@attrs.frozen
class HttpProbe:
    """Healthy when GET `endpoint` answers `status` and its body is as `response` says."""

    endpoint: str
    status: int = 200
    response: ExpectedResponse | None = None

    def __attrs_post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise InvalidHealthCheck(
                f"healthcheck.endpoint: {self.endpoint!r} must be http://host:port/path"
            )


@attrs.frozen
class TcpProbe:
    """Healthy when a TCP connection to `endpoint` (`host:port`) is accepted."""

    endpoint: str

    def __attrs_post_init__(self) -> None:
        host, _, port = self.endpoint.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidHealthCheck(f"healthcheck.endpoint: {self.endpoint!r} must be host:port")

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.endpoint.rpartition(":")
        return host.strip("[]"), int(port)


Probe = CommandProbe | HttpProbe | TcpProbe


@attrs.frozen
class HealthCheck:
    probe: Probe
    interval: float = 10.0
    timeout: float = 5.0
    retries: int = 3  # consecutive failures that make the allocation unhealthy
    start_period: float = 0.0
    start_interval: float = 0.2  # probe cadence inside start_period until the first success
    history: int = 10  # results kept for status
    namespace: str | None = None
    """The allocation's network namespace: http and tcp probes connect from inside it,
    so `127.0.0.1:PORT` is the allocation's own loopback (None: the host's)."""

    def __attrs_post_init__(self) -> None:
        for field in ("interval", "timeout", "start_interval"):
            if getattr(self, field) <= 0:
                raise InvalidHealthCheck(f"healthcheck.{field}: must be > 0")
        if self.retries < 1:
            raise InvalidHealthCheck("healthcheck.retries: must be >= 1")


class HealthState(enum.Enum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@attrs.frozen
class ProbeResult:
    ok: bool
    at: float
    duration: float
    detail: str = ""


class HealthLedger:
    """Consecutive-failure counting with a start period and a bounded history."""

    def __init__(self, check: HealthCheck, started_at: float) -> None:
        self.check = check
        self.started_at = started_at
        self.state = HealthState.STARTING
        self.consecutive_failures = 0
        self.history: collections.deque[ProbeResult] = collections.deque(maxlen=check.history)

    def record(self, result: ProbeResult) -> HealthState | None:
        """Add a result; returns the new state when it changed, else None."""
        self.history.append(result)
        before = self.state
        if result.ok:
            self.consecutive_failures = 0
            self.state = HealthState.HEALTHY
        elif (
            self.state is HealthState.STARTING
            and result.at - self.started_at < self.check.start_period
        ):
            pass  # still warming up: failures do not count yet
        else:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.check.retries:
                self.state = HealthState.UNHEALTHY
        return self.state if self.state is not before else None

    def next_delay(self, now: float) -> float:
        """Time until the next probe, docker's cadence: `start_interval` while starting
        inside `start_period`, else `interval` (so with no start period the first probe
        comes one interval after the start, giving a slow service time to bind)."""
        starting = self.state is HealthState.STARTING
        if starting and now - self.started_at < self.check.start_period:
            return self.check.start_interval
        return self.check.interval
