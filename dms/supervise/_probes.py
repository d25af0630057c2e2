"""Running one health probe: command inside the workload, HTTP GET, or TCP connect.

Every probe is bounded by the check's timeout and never raises for an unhealthy
target: failures become a `ProbeResult` whose detail says what went wrong.
"""

from __future__ import annotations

import socket
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
            ok, detail = await _probe(check.probe, execution, check.timeout, check.namespace)
        except (OSError, ExecutorError, h11.ProtocolError, trio.TooSlowError,
                trio.BrokenResourceError) as error:  # a reset connection is unhealthy
            ok, detail = False, f"{type(error).__name__}: {error}"
    now = trio.current_time()
    return ProbeResult(ok=ok, at=now, duration=now - began, detail=detail)


async def _probe(
    probe: CommandProbe | HttpProbe | TcpProbe, execution: Execution, timeout: float,
    namespace: str | None = None,
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
            status, body = await http_get(probe.endpoint, namespace)
            if status != probe.status:
                return False, f"HTTP {status}, expected {probe.status}"
            if probe.response is not None and not probe.response.matches(body):
                return False, f"HTTP {status} body {probe.response.mismatch()}"
            return True, f"HTTP {status}"
        case TcpProbe():
            host, port = probe.address
            stream = await open_stream(host, port, namespace)
            await stream.aclose()
            return True, "connected"


async def open_stream(host: str, port: int, namespace: str | None = None) -> trio.SocketStream:
    """A TCP connection to `host:port`, opened from inside `namespace` when given (the
    name is resolved on the host: a literal address or `localhost`)."""
    if namespace is None:
        return await trio.open_tcp_stream(host, port)
    from dms.network import entered  # only a provider with the network pays the import

    family, kind, proto, _, address = (await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM))[0]
    with entered(namespace):  # the socket stays in the namespace it was made in
        raw = socket.socket(family, kind, proto)
    sock = trio.socket.from_stdlib_socket(raw)
    try:
        await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def http_get(url: str, namespace: str | None = None) -> tuple[int, str]:
    """A one-shot HTTP/1.1 GET with h11: (status, first 64 KiB of the body); from
    inside `namespace` when given."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = h11.Request(
        method="GET",
        target=target,
        headers=[("Host", parts.netloc), ("Connection", "close")],
    )
    stream = await open_stream(parts.hostname, parts.port, namespace)
    async with stream:
        status, body = await exchange(stream, request, max_body=_MAX_BODY)
    return status, body.decode("utf-8", errors="replace")
