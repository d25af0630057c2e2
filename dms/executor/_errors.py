"""Named failures of executors. Each message names the allocation, field or thing missing."""

from __future__ import annotations


class ExecutorError(Exception):
    """Base class of every executor failure."""


class InvalidSpec(ExecutorError):
    """The execution spec cannot be honoured; the message names the field."""


class ExecutorNotOpen(ExecutorError):
    """`start` was called outside `async with executor:` (executions need its nursery)."""


class EngineUnavailable(ExecutorError):
    """The engine an executor drives is missing or not answering (docker daemon, ...)."""


class FirecrackerUnavailable(EngineUnavailable):
    """The firecracker binary or /dev/kvm is missing; the message says which."""


class ImageUnavailable(ExecutorError):
    """The image is neither present locally nor pullable."""


class ProvisionFailed(ExecutorError):
    """A provision script failed; carries the script name, exit code and its output."""

    def __init__(self, allocation: str, script: str, exit_code: int, output: str) -> None:
        super().__init__(
            f"allocation {allocation!r}: provision script {script!r} exited {exit_code}:\n{output}"
        )
        self.allocation = allocation
        self.script = script
        self.exit_code = exit_code
        self.output = output


class ExecUnsupported(ExecutorError):
    """Running a command inside this kind of workload is not possible (e.g. a microVM)."""


class FirecrackerApiError(ExecutorError):
    """The firecracker API answered a request with an error status."""

    def __init__(self, method: str, path: str, status: int, fault: str) -> None:
        super().__init__(f"firecracker API {method} {path} -> {status}: {fault}")
        self.method = method
        self.path = path
        self.status = status
        self.fault = fault


class NotAdoptable(ExecutorError):
    """An execution left by an earlier executor cannot be taken over: it ended, its pid
    is another process now, or its record does not name one of this executor's."""

    def __init__(self, allocation: str, reason: str) -> None:
        super().__init__(f"execution {allocation!r} cannot be adopted: {reason}")
        self.allocation = allocation
        self.reason = reason
