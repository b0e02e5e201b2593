"""The embedded Gemma 3 270M in process gives the answer llama-cpp-python's server gives.

The rest of the GGUF path of the ``huggingface`` provider is in test_local_gguf.py.
"""

from __future__ import annotations

import pytest
from forge_core import Forge, Provider
from forge_test_support import LocalServer, config_for, embedded_in_process, openai_compatible_on

pytestmark = [pytest.mark.local_model, pytest.mark.local_server]


@pytest.fixture(scope="module")
def forge() -> Forge:
    return Forge(config_for(embedded_in_process(isolation="thread")))


def test_answer_in_process_is_the_answer_behind_llama_cpp_pythons_server(
    forge: Forge, local_server: LocalServer
) -> None:
    prompt = "Why is the sky blue? Answer in one sentence."
    served = Forge(config_for(openai_compatible_on(local_server)))
    remote = served.chat(prompt, temperature=0, max_tokens=48)
    local = forge.chat(prompt, model="huggingface:gemma-3-270m", temperature=0, max_tokens=48)
    assert (remote.provider, local.provider) == (Provider.OPENAI, Provider.HUGGINGFACE)
    assert local.content == remote.content
