"""Ollama's per-call options (``num_ctx``, ``repeat_penalty``, ``keep_alive``) reach the native
``/api/chat`` body where Ollama documents them; every other provider translates
``repeat_penalty`` where it has it and leaves the rest out with a debug line (docs/providers.md).
No network: the bodies are read as built."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from forge_core import ChatRequest, Message, Provider
from forge_core.backends import AnthropicClient, OllamaClient, build_backends
from forge_core.backends.http.openai.wire import build_body
from forge_core.backends.local import engine
from forge_test_support import config_for

OLLAMA_SET: dict[str, Any] = {"num_ctx": 16384, "repeat_penalty": 1.2, "keep_alive": "10m"}


def _ask(content: str = "hi", **params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=content)], **params)


def _left_out(caplog: pytest.LogCaptureFixture) -> str:
    return " ".join(r.getMessage() for r in caplog.records if r.name == "forge_core.parameters")


def _native(**section: Any) -> OllamaClient:
    config = config_for({"name": "ollama", "api": "native", **section})
    client = build_backends(config)[Provider.OLLAMA]
    assert isinstance(client, OllamaClient)
    return client


def test_native_sends_them_in_options_and_keep_alive_at_the_top() -> None:
    body = _native(keep_alive="5m").native_body(_ask(**OLLAMA_SET), "qwen3", stream=False)
    assert body["options"] == {"num_ctx": 16384, "repeat_penalty": 1.2}
    assert body["keep_alive"] == "10m"  # the call's wins over the config's


def test_a_given_num_ctx_wins_over_the_sized_one_both_ways() -> None:
    client = _native(num_ctx=8192)
    long_prompt = "x" * 60_000  # ~20k tokens: forge would size 32768
    assert client.native_body(_ask(long_prompt), "m", stream=False)["options"]["num_ctx"] == 32768
    smaller = client.native_body(_ask(long_prompt, num_ctx=4096), "m", stream=False)
    assert smaller["options"]["num_ctx"] == 4096
    larger = client.native_body(_ask(num_ctx=65536), "m", stream=False)
    assert larger["options"]["num_ctx"] == 65536


def test_the_configured_keep_alive_is_sent_when_the_call_sets_none() -> None:
    body = _native(keep_alive="5m").native_body(_ask(), "qwen3", stream=False)
    assert body["keep_alive"] == "5m"
    assert "keep_alive" not in body.get("options", {})


@pytest.mark.parametrize(
    ("dialect", "repeat_penalty_as"),
    [
        ("openai", None),
        ("openai-compatible", None),
        ("ollama", None),
        ("openrouter", "repetition_penalty"),
        ("vllm", "repetition_penalty"),
        ("llama-cpp", "repeat_penalty"),
        ("llama-server", "repeat_penalty"),
        ("lmstudio", "repeat_penalty"),
    ],
)
def test_openai_dialects_translate_repeat_penalty_and_leave_out_ollamas_runtime_options(
    dialect: str, repeat_penalty_as: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    body = build_body(_ask(**OLLAMA_SET), "m", stream=False, dialect=dialect)
    sent = {key for key in body if key not in ("model", "messages", "stream")}
    assert sent == ({repeat_penalty_as} if repeat_penalty_as else set())
    if repeat_penalty_as:
        assert body[repeat_penalty_as] == 1.2
    logged = _left_out(caplog)
    assert f"{dialect} takes no" in logged
    assert "keep_alive" in logged and "num_ctx" in logged


def test_anthropic_leaves_them_out_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    client = AnthropicClient(default_model="claude-3-5-haiku-latest", env={})
    body = client.body(_ask(**OLLAMA_SET), "claude", stream=False)
    assert not set(OLLAMA_SET) & set(body)
    assert "anthropic takes no keep_alive, num_ctx, repeat_penalty" in _left_out(caplog)


class _FakeLlama:
    chat_format = "chatml"

    def create_chat_completion(self, **kwargs: Any) -> Any:
        return self.create_completion(prompt=[1, 2, 3], **kwargs)

    def create_completion(self, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_gguf_takes_repeat_penalty_over_its_default_and_leaves_out_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    kwargs = engine._GgufGeneration(_FakeLlama(), _ask(**OLLAMA_SET), "m")._completion_kwargs()
    assert kwargs["repeat_penalty"] == 1.2
    assert "num_ctx" not in kwargs and "keep_alive" not in kwargs
    assert "huggingface (GGUF) takes no keep_alive, num_ctx" in _left_out(caplog)
    default = engine._GgufGeneration(_FakeLlama(), _ask(), "m")._completion_kwargs()
    assert default["repeat_penalty"] == engine.REPEAT_PENALTY
