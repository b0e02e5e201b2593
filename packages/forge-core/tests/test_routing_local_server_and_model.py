"""Routing between llama-cpp-python's real server and the embedded model run by forge.

The rest of the routing against the server is in test_routing_local_server.py.
"""

from __future__ import annotations

import pytest
from forge_core import Forge, Provider
from forge_test_support import LocalServer, config_for, embedded_in_process, ollama_on

pytestmark = [pytest.mark.local_server, pytest.mark.local_model]
PROMPT = "Say hello."


def test_explicit_provider_model_pins_the_first_candidate(local_server: LocalServer) -> None:
    forge = Forge(config_for(ollama_on(local_server), embedded_in_process()))
    answer = forge.chat(PROMPT, model="huggingface:gemma-3-270m", max_tokens=4)
    assert answer.provider is Provider.HUGGINGFACE
    assert [a.provider for a in answer.route.attempts] == [Provider.HUGGINGFACE]
