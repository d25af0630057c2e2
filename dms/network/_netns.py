"""Named network namespaces, made and removed with iproute2, entered with setns(2).

A namespace made here is `ip netns add NAME` (a bind mount under /run/netns, so it
outlives any process in it and `ip netns exec` finds it) plus, when asked, the files
`ip netns exec` bind-mounts over /etc (its resolv.conf) under /etc/netns/NAME.
`entered` switches only the calling thread (setns is per thread): a TUN device or a
socket opened inside stays in that namespace when the thread switches back, which is
how one process serves many namespaces without a helper process in each.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from dms.network._errors import NamespaceError

CLONE_NEWNET = 0x40000000
NETNS_RUN = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")

_libc = ctypes.CDLL(None, use_errno=True)


def run_ip(*args: str, namespace: str | None = None) -> str:
    """Run `ip [-n namespace] args...`; NamespaceError naming the command on failure."""
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NamespaceError(" ".join(command), str(exc)) from None
    if done.returncode != 0:
        raise NamespaceError(" ".join(command), done.stderr.strip() or f"exit {done.returncode}")
    return done.stdout


def namespace_exists(name: str) -> bool:
    return (NETNS_RUN / name).exists()


def create_namespace(name: str, resolv_conf: str | None = None) -> None:
    """Make namespace `name` with its loopback up, and (optionally) the resolv.conf
    `ip netns exec` shows inside it. Nothing is left behind when this fails."""
    _check_name(name)
    if namespace_exists(name):
        raise NamespaceError(f"namespace {name}", "already exists")
    run_ip("netns", "add", name)
    try:
        run_ip("link", "set", "lo", "up", namespace=name)
        if resolv_conf is not None:
            etc = NETNS_ETC / name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(resolv_conf)
    except BaseException:
        delete_namespace(name)
        raise


def attach_namespace(name: str, pid: int, resolv_conf: str | None = None) -> None:
    """Name the network namespace process `pid` is in (`ip netns attach`): how a
    restarted provider takes back the namespace of a workload it re-adopted. Its
    loopback is up already; the resolv.conf is written as `create_namespace` does."""
    _check_name(name)
    if namespace_exists(name):
        raise NamespaceError(f"namespace {name}", "already exists")
    run_ip("netns", "attach", name, str(pid))
    try:
        if resolv_conf is not None:
            etc = NETNS_ETC / name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(resolv_conf)
    except BaseException:
        delete_namespace(name)
        raise


def delete_namespace(name: str) -> None:
    """Remove namespace `name` and its /etc/netns files; a missing one is no error
    (teardown is idempotent). Interfaces inside go with it once nothing holds them:
    close TUN descriptors and sockets made inside before calling this."""
    _check_name(name)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
    if namespace_exists(name):
        run_ip("netns", "delete", name)


def entered(name: str) -> contextlib.AbstractContextManager[None]:
    """Run the block with the calling thread inside namespace `name`. No awaits in
    the block: another task on the same thread would run inside too."""
    _check_name(name)
    return entered_path(NETNS_RUN / name, f"namespace {name}")


@contextlib.contextmanager
def entered_path(path: str | os.PathLike[str], what: str | None = None) -> Iterator[None]:
    """`entered` for a namespace by file: a container's is /proc/PID/ns/net."""
    what = what or str(path)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NamespaceError(what, exc.strerror or str(exc)) from None
        try:
            _setns(target, what)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home, "the thread's own namespace")
    finally:
        os.close(home)


def namespace_names() -> Sequence[str]:
    """The named namespaces on this host (what `ip netns list` shows)."""
    try:
        return sorted(p.name for p in NETNS_RUN.iterdir())
    except FileNotFoundError:
        return []


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NamespaceError(what, f"setns failed: {os.strerror(errno)}")


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or name in (".", "..") or "/" in name or "\0" in name:
        raise NamespaceError(f"namespace {name!r}", "a name is 1-64 characters without '/'")
