"""The background health monitor keeps the router's health cache fresh."""

from __future__ import annotations

import pytest
from forge_core import ChatRequest, Forge, Message, Provider
from forge_core._health import HealthMonitor
from forge_test_support import LocalServer, closed_port_url, config_for

REQUEST = ChatRequest(messages=[Message(role="user", content="hi")])


def test_monitor_marks_a_dead_provider_down_so_the_router_skips_it_without_a_call(
    local_server: LocalServer,
) -> None:
    dead = closed_port_url()
    forge = Forge(
        config_for(
            {"name": "ollama", "base_url": dead},
            {
                "name": "openai",
                "base_url": local_server.openai_base_url,
                "default_model": local_server.model,
                "api_key_env": None,
            },
        )
    )
    with forge.start_health_monitor(interval_seconds=0.05) as monitor:
        assert monitor.wait_for_rounds(2, timeout=30)
        health = forge.check_health()
    assert health == {"ollama": "down", "openai": "up"}
    candidates, drops = forge.router.plan(REQUEST)
    assert [c.provider for c in candidates] == [Provider.OPENAI]
    assert drops[0].provider is Provider.OLLAMA and "down" in drops[0].reason
    assert not monitor.running


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
