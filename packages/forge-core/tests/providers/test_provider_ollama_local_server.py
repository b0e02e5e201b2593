"""Ollama's two clients against llama-cpp-python's real server, which has only the ``/v1`` surface.

The native API's own tests (cassettes, real sockets for faults) are in
test_provider_ollama_native.py.
"""

from __future__ import annotations

import pytest
from forge_core.backends import OllamaClient, OllamaOpenAIClient
from forge_test_support import LocalServer

pytestmark = pytest.mark.local_server


async def test_a_v1_only_server_is_healthy_for_the_v1_api_but_not_for_native(
    local_server: LocalServer,
) -> None:
    v1 = OllamaOpenAIClient(
        local_server.base_url, default_model=local_server.model, timeout_seconds=5
    )
    native = OllamaClient(
        local_server.base_url, default_model=local_server.model, timeout_seconds=5
    )
    assert v1.health(timeout=5) is True
    assert await v1.ahealth(timeout=5) is True
    assert native.health(timeout=5) is False
