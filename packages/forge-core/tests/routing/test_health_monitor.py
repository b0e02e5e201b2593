"""The background health monitor keeps the router's health cache fresh.

Its run against llama-cpp-python's real server is in test_health_monitor_local_server.py.
"""

from __future__ import annotations

import pytest
from forge_core.routing.health import HealthMonitor


def test_monitor_rounds_refresh_rather_than_reuse_the_cache() -> None:
    probes: list[int] = []
    monitor = HealthMonitor(lambda: probes.append(1), interval=0.01)
    with monitor:
        assert monitor.wait_for_rounds(3, timeout=30)
    assert len(probes) >= 3
    assert not monitor.running


def test_a_failing_probe_does_not_kill_the_monitor() -> None:
    def probe() -> None:
        raise RuntimeError("probe broke")

    with HealthMonitor(probe, interval=0.01) as monitor:
        assert monitor.wait_for_rounds(2, timeout=30)
        assert monitor.running


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HealthMonitor(lambda: None, interval=0)
