"""Skip marks for tests that need what this host may lack, each naming what is
missing (one definition, so every such test skips for the same stated reason)."""

from __future__ import annotations

import pytest

from dms.network import missing_capability

needs_network = pytest.mark.skipif(missing_capability() is not None,
                                   reason=f"the ensemble network {missing_capability()}")
"""Root, /dev/net/tun and iproute2: network namespaces, TUN links, the ensemble network."""
