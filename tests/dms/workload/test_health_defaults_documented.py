"""The ensemble reference states the health-check defaults the supervisor applies."""

from __future__ import annotations

import attrs

from dms.ensemble import _spec as spec
from dms.supervise import HealthCheck


def test_the_documented_health_check_defaults_are_the_ones_applied() -> None:
    docs = {f.name: f.metadata["doc"] for f in attrs.fields(spec.HealthCheckSpec)}
    defaults = {f.name: f.default for f in attrs.fields(HealthCheck)}
    assert f"(default {defaults['interval']:g}s)" in docs["interval"]
    assert f"(default {defaults['timeout']:g}s)" in docs["timeout"]
    assert f"(default {defaults['retries']})" in docs["retries"]
