"""The host side: the capability a bid checks, restart reconciliation of namespaces,
and entering a namespace by its file (as for a container's)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dms.network import (
    NamespaceError,
    create_namespace,
    entered,
    entered_path,
    missing_capability,
    namespace_exists,
    reconcile_namespaces,
)
from dms.network._netns import NETNS_ETC, NETNS_RUN


def test_a_missing_capability_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert missing_capability() == "needs root to create network namespaces"


def test_reconciling_without_a_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix is required"):
        reconcile_namespaces("", set())


def test_reconciling_removes_only_the_unknown_namespaces_of_the_prefix(namespace_prefix: str) -> None:
    for name in ("kept", "stale", "stale2"):
        create_namespace(namespace_prefix + name, "nameserver 127.0.0.53\n")
    (NETNS_ETC / (namespace_prefix + "orphan")).mkdir(parents=True)  # files, no namespace
    removed = reconcile_namespaces(namespace_prefix, {namespace_prefix + "kept"})
    assert removed == sorted(namespace_prefix + n for n in ("orphan", "stale", "stale2"))
    assert namespace_exists(namespace_prefix + "kept")
    assert not namespace_exists(namespace_prefix + "stale")
    assert not (NETNS_ETC / (namespace_prefix + "orphan")).exists()
    assert (NETNS_ETC / (namespace_prefix + "kept") / "resolv.conf").exists()


def test_a_namespace_is_entered_by_its_file_and_left_again(namespace_prefix: str) -> None:
    create_namespace(namespace_prefix + "c")
    home = os.stat("/proc/thread-self/ns/net").st_ino
    with entered_path(NETNS_RUN / (namespace_prefix + "c")):
        inside = os.stat("/proc/thread-self/ns/net").st_ino
        assert inside != home
        assert [name for _, name in socket.if_nameindex()] == ["lo"]  # its own interfaces only
    assert os.stat("/proc/thread-self/ns/net").st_ino == home


def test_entering_a_namespace_that_is_not_there_names_it(namespace_prefix: str) -> None:
    with pytest.raises(NamespaceError, match=f"namespace {namespace_prefix}none"), \
            entered(namespace_prefix + "none"):
        pass
    assert not Path(NETNS_RUN / (namespace_prefix + "none")).exists()
