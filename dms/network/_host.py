"""What this host offers the ensemble network, and the namespaces it left behind.

`missing_capability` is for bid time: a provider that cannot make namespaces or TUN
devices declines an ensemble needing the private network, naming what is missing,
instead of failing at allocate. `reconcile_namespaces` is for restart: namespaces
carry a provider-chosen prefix, and every one with that prefix the provider no longer
knows of is removed (with its /etc/netns files), because no process holds it now.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path

from dms.network._netns import NETNS_ETC, delete_namespace, namespace_names


def missing_capability() -> str | None:
    """None when this host can run the ensemble network, else what it lacks, worded
    for a decline ("needs root to create network namespaces")."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not Path("/dev/net/tun").exists():
        return "needs /dev/net/tun"
    if shutil.which("ip") is None:
        return "needs iproute2 (the ip command)"
    return None


def reconcile_namespaces(prefix: str, keep: Collection[str]) -> list[str]:
    """Delete every namespace named `prefix…` that is not in `keep`, and stray
    /etc/netns/`prefix…` directories; the names removed, sorted."""
    if not prefix:
        raise ValueError("a prefix is required: reconciling would touch every namespace")
    removed = []
    for name in namespace_names():
        if name.startswith(prefix) and name not in keep:
            delete_namespace(name)
            removed.append(name)
    if NETNS_ETC.exists():
        for etc in NETNS_ETC.iterdir():
            if etc.name.startswith(prefix) and etc.name not in keep:
                shutil.rmtree(etc, ignore_errors=True)
                if etc.name not in removed:
                    removed.append(etc.name)
    return sorted(removed)
