"""The background health monitor against llama-cpp-python's real server (test_health_monitor.py
has the monitor's own tests)."""

from __future__ import annotations

import pytest
from forge_core import ChatRequest, Forge, Message, Provider
from forge_test_support import LocalServer, closed_port_url, config_for

pytestmark = pytest.mark.local_server

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
