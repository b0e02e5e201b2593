"""ForgeLLM on the embedded GGUF in process, served by the ``huggingface`` provider.

The model is Gemma 3 270M, a small base model: these tests assert on types, providers, routes
and usage, never on what the answer says. ForgeLLM against llama-cpp-python's server is in
test_llm_local_server.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_test_support import config_for, embedded_in_process
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
)
from llamaindex_forge import ForgeLLM

pytestmark = pytest.mark.local_model

MAX_TOKENS = 12

CONVERSATION = [
    ChatMessage(role=MessageRole.SYSTEM, content="You answer in one short sentence."),
    ChatMessage(role=MessageRole.USER, content="Name a colour."),
]


def assert_served(response: ChatResponse | CompletionResponse, provider: str, model: str) -> None:
    """``raw`` and the message metadata name the provider and model that answered."""
    assert isinstance(response.raw, dict)
    assert response.raw["provider"] == provider
    assert response.raw["model"] == model
    route = response.raw["route"]
    assert route["provider"] == provider
    assert route["model"] == model
    assert route["attempts"][-1]["provider"] == provider
    assert route["attempts"][-1]["ok"] is True
    served = {"provider": provider, "model": model}
    if isinstance(response, ChatResponse):
        assert response.message.additional_kwargs == served
    else:
        assert response.additional_kwargs == served


def assert_usage(raw: dict[str, Any]) -> None:
    usage = raw["usage"]
    assert isinstance(usage, dict)
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


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
