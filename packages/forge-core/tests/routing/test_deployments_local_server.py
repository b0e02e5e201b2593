"""Two real llama-cpp-python servers (the gemma and the chatml-function-calling one) as named
OpenAI-compatible deployments of one forge: balanced when listed under one entry, pinned by
name, and a dead third deployment in front of them costs nothing but its drop.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import Forge, ForgeConfig
from forge_test_support import LocalServer, closed_port_url

pytestmark = pytest.mark.local_server


def _endpoint(name: str, base_url: str, model: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "openai",
        "base_url": base_url,
        "default_model": model,
        "api_key_env": None,
        # A fixed dialect: no self-description probe, so only chat calls reach the servers.
        "dialect": "llama-cpp",
    }


def _forge(local_server: LocalServer, tool_server: LocalServer, order: list[str]) -> Forge:
    config = ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": {
                "endpoints": [
                    _endpoint("dead-box", closed_port_url() + "/v1", local_server.model),
                    _endpoint("gemma-box", local_server.openai_base_url, local_server.model),
                    _endpoint("tools-box", tool_server.openai_base_url, tool_server.model),
                ],
                "fallback": {"order": order},
            },
        }
    )
    return Forge(config, env={})


def test_two_real_servers_under_one_entry_share_the_requests(
    local_server: LocalServer, tool_server: LocalServer
) -> None:
    forge = _forge(local_server, tool_server, ["gemma-box", "openai"])
    answers = [forge.chat("Say hello.", max_tokens=4) for _ in range(2)]
    assert all(answer.content for answer in answers)
    # gemma-box is its own entry first: it serves while it is healthy.
    assert [a.route.deployment for a in answers] == ["gemma-box", "gemma-box"]
    balanced = _forge(local_server, tool_server, ["openai"])
    # Four conversations (an identical prompt would go back to the server holding it: prefix
    # affinity). Under one entry the two live servers take turns; the dead one is tried once,
    # then its circuit or its silence keeps it out.
    served = {
        balanced.chat(f"Say hello to {name}.", max_tokens=4).route.deployment
        for name in ("Ada", "Bo", "Cy", "Di")
    }
    assert served == {"gemma-box", "tools-box"}


def test_a_request_pinned_by_deployment_name_goes_there_past_a_dead_one(
    local_server: LocalServer, tool_server: LocalServer
) -> None:
    forge = _forge(local_server, tool_server, ["dead-box", "gemma-box", "tools-box"])
    routed = forge.chat("Say hello.", max_tokens=4)
    pinned = forge.chat("Say hello.", max_tokens=4, model=f"tools-box:{tool_server.model}")
    assert [(a.deployment, a.ok) for a in routed.route.attempts] == [
        ("dead-box", False),
        ("gemma-box", True),
    ]
    assert [(a.deployment, a.ok) for a in pinned.route.attempts] == [("tools-box", True)]
    assert pinned.content
