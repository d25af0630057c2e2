"""Running one health probe: command inside the workload, HTTP GET, or TCP connect.

Every probe is bounded by the check's timeout and never raises for an unhealthy
target: failures become a `ProbeResult` whose detail says what went wrong.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import h11
import trio

from dms._http11 import exchange
from dms.executor._errors import ExecutorError
from dms.executor._protocol import Execution
from dms.supervise._health import CommandProbe, HealthCheck, HttpProbe, ProbeResult, TcpProbe

_MAX_BODY = 64 * 1024


async def run_probe(check: HealthCheck, execution: Execution) -> ProbeResult:
    began = trio.current_time()
    ok, detail = False, f"timed out after {check.timeout}s"
    with trio.move_on_after(check.timeout):
        try:
            ok, detail = await _probe(check.probe, execution, check.timeout)
        except (OSError, ExecutorError, h11.ProtocolError, trio.TooSlowError,
                trio.BrokenResourceError) as error:  # a reset connection is unhealthy
            ok, detail = False, f"{type(error).__name__}: {error}"
    now = trio.current_time()
    return ProbeResult(ok=ok, at=now, duration=now - began, detail=detail)


async def _probe(
    probe: CommandProbe | HttpProbe | TcpProbe, execution: Execution, timeout: float
) -> tuple[bool, str]:
    match probe:
        case CommandProbe():
            result = await execution.exec(probe.exec, timeout)
            if result.exit_code != 0:
                return False, f"exit code {result.exit_code}: {result.output[-200:]}"
            if probe.response is not None and not probe.response.matches(result.output):
                return False, f"output {result.output[-200:]!r} {probe.response.mismatch()}"
            return True, "exit code 0"
        case HttpProbe():
            status, body = await http_get(probe.endpoint)
            if status != probe.status:
                return False, f"HTTP {status}, expected {probe.status}"
            if probe.response is not None and not probe.response.matches(body):
                return False, f"HTTP {status} body {probe.response.mismatch()}"
            return True, f"HTTP {status}"
        case TcpProbe():
            host, port = probe.address
            stream = await trio.open_tcp_stream(host, port)
            await stream.aclose()
            return True, "connected"


async def http_get(url: str) -> tuple[int, str]:
    """A one-shot HTTP/1.1 GET with h11: (status, first 64 KiB of the body)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = h11.Request(
        method="GET",
        target=target,
        headers=[("Host", parts.netloc), ("Connection", "close")],
    )
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        status, body = await exchange(stream, request, max_body=_MAX_BODY)
    return status, body.decode("utf-8", errors="replace")
