"""A node's lifetimes a soak compresses: publication ids and repairs, pruning."""

from __future__ import annotations

import math

import pytest

from dms.node import open_node
from dms.node._node import MIN_PUBLICATION_LIFETIME, PUBLICATION_LIFETIME, publication_memory


def test_the_repair_cache_never_outlives_the_remembered_ids():
    seen, cache = publication_memory(20.0)
    assert (seen.ttl, cache.ttl) == (20.0, 20.0)
    seen, cache = publication_memory(PUBLICATION_LIFETIME)
    assert (seen.ttl, cache.ttl) == (300.0, 120.0)


@pytest.mark.parametrize("lifetime", [MIN_PUBLICATION_LIFETIME - 1, 0.0, -5.0, math.nan])
async def test_a_node_with_too_short_a_publication_lifetime_is_refused_before_it_starts(
        lifetime):
    with pytest.raises(ValueError, match="publication_lifetime must be at least 10 s"):
        async with open_node(publication_lifetime=lifetime):
            raise AssertionError("the node ran")


@pytest.mark.parametrize("interval", [0.5, 0.0, -1.0, math.nan])
async def test_a_prune_interval_under_a_second_is_refused_and_the_old_one_kept(interval):
    async with open_node() as node:
        node.prune_interval = 5.0
        with pytest.raises(ValueError, match="prune_interval must be at least 1 s"):
            node.prune_interval = interval
        assert node.prune_interval == 5.0
