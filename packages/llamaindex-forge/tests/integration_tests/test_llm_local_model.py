"""ForgeLLM on the embedded GGUF in process, served by the ``huggingface`` provider.

The model is Gemma 3 270M, a small base model: these tests assert on types, providers, routes
and usage, never on what the answer says. ForgeLLM against llama-cpp-python's server is in
test_llm_local_server.py.
"""

from __future__ import annotations

import pytest
from forge_test_support import config_for, embedded_in_process
from llamaindex_forge import ForgeLLM
from llamaindex_forge_support import CONVERSATION, MAX_TOKENS, assert_served, assert_usage

pytestmark = pytest.mark.local_model


def test_in_process_chat_is_served_by_huggingface() -> None:
    llm = ForgeLLM(config=config_for(embedded_in_process()), max_tokens=MAX_TOKENS)
    response = llm.chat(CONVERSATION)
    assert response.message.content
    assert_served(response, "huggingface", "gemma-3-270m")
    assert response.raw is not None
    assert_usage(response.raw)


def test_in_process_stream_reports_usage_on_the_last_response() -> None:
    llm = ForgeLLM(
        config=config_for(embedded_in_process()),
        model="huggingface:gemma-3-270m",
        max_tokens=MAX_TOKENS,
    )
    *pieces, last = llm.stream_chat(CONVERSATION)
    assert pieces
    assert all(piece.raw is not None and piece.raw["usage"] is None for piece in pieces)
    assert last.raw is not None
    assert_usage(last.raw)
    assert_served(last, "huggingface", "gemma-3-270m")
