"""Helpers for llamaindex-forge's integration tests: the conversation they send and checks on
what ForgeLLM answers (who served it, the usage it reports)."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
)

#: ``max_tokens`` for the tests' ForgeLLMs; `assert_usage` checks the answer stayed within it.
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
    """``raw`` reports usage: some input, at most `MAX_TOKENS` of output, and their sum."""
    usage = raw["usage"]
    assert isinstance(usage, dict)
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
