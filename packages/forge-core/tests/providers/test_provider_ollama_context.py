"""Ollama's native API gets a ``num_ctx`` that fits the prompt and the answer, so a long prompt
is not cut at the server's default context: none sent (or the configured one) while it fits,
else a power of two large enough, capped at the model's own context length."""

from __future__ import annotations

from forge_core import Capabilities, ChatRequest, Message, Provider
from forge_core.backends import OllamaClient, build_backends
from forge_core.backends.http.ollama.native import (
    ANSWER_RESERVE_TOKENS,
    OLLAMA_DEFAULT_NUM_CTX,
    sized_num_ctx,
)
from forge_test_support import config_for


def _ask(chars: int, max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="x" * chars)], max_tokens=max_tokens)


def test_a_prompt_that_fits_the_default_sends_no_num_ctx() -> None:
    assert sized_num_ctx(_ask(3000), None, None) is None
    assert sized_num_ctx(_ask(3000), 8192, None) == 8192


def test_a_long_prompt_gets_a_power_of_two_that_holds_it_and_the_answer() -> None:
    # 30 000 characters, about 10 000 tokens, and 1 000 to answer: 16 384.
    assert sized_num_ctx(_ask(30_000, 1000), None, None) == 16_384
    # No max_tokens: room for ANSWER_RESERVE_TOKENS.
    needed = 12_000 // 3 + ANSWER_RESERVE_TOKENS
    assert needed > OLLAMA_DEFAULT_NUM_CTX
    assert sized_num_ctx(_ask(12_000), None, None) == 8192
    # The configured size is the floor.
    assert sized_num_ctx(_ask(30_000, 1000), 32_768, None) == 32_768


def test_the_size_is_capped_at_the_models_context_length() -> None:
    assert sized_num_ctx(_ask(30_000, 1000), None, 12_000) == 12_000


def test_the_native_body_carries_the_size_and_reads_the_models_length() -> None:
    client = build_backends(config_for({"name": "ollama", "api": "native"}))[Provider.OLLAMA]
    assert isinstance(client, OllamaClient)
    assert "options" not in client.native_body(_ask(100), "qwen3", stream=False)
    assert client.native_body(_ask(30_000, 1000), "qwen3", stream=False)["options"] == {
        "num_predict": 1000,
        "num_ctx": 16_384,
    }
    client.admin.model_capabilities["qwen3"] = Capabilities(context_window=10_000)
    body = client.native_body(_ask(30_000, 1000), "qwen3", stream=False)
    assert body["options"]["num_ctx"] == 10_000
