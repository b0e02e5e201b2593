"""Every generation parameter a request sets reaches the wire body each client builds, under
the provider's name for it; one the provider lacks is left out with a debug line naming it
(docs/providers.md, per provider). No network: the bodies are read as built."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from forge_core import ChatRequest, Message, Provider
from forge_core.backends import AnthropicClient, OllamaClient, build_backends
from forge_core.backends.http.openai.wire import build_body
from forge_core.backends.local import engine
from forge_test_support import config_for

ALL_SET: dict[str, Any] = {
    "top_p": 0.5,
    "top_k": 40,
    "seed": 7,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.2,
    "logit_bias": {"50256": -100.0},
    "logprobs": True,
    "top_logprobs": 3,
    "parallel_tool_calls": False,
    "user": "user-42",
    "service_tier": "flex",
}


def _ask(**params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")], **params)


def _left_out(caplog: pytest.LogCaptureFixture) -> str:
    return " ".join(r.getMessage() for r in caplog.records if r.name == "forge_core.parameters")


def test_openai_sends_every_parameter_but_top_k_which_it_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    body = build_body(_ask(**ALL_SET), "gpt-4o-mini", stream=False, dialect="openai")
    assert {key: body[key] for key in ALL_SET if key in body} == {
        key: value for key, value in ALL_SET.items() if key != "top_k"
    }
    assert "top_k" not in body
    assert "openai takes no top_k; left out" in _left_out(caplog)


@pytest.mark.parametrize(
    ("dialect", "left_out"),
    [
        ("openai-compatible", set()),
        ("openrouter", {"service_tier"}),
        ("vllm", {"service_tier"}),
        ("llama-cpp", {"parallel_tool_calls", "service_tier"}),
        ("llama-server", {"user", "service_tier"}),
        ("ollama", {"top_k", "logit_bias", "user", "service_tier", "parallel_tool_calls"}),
        ("lmstudio", {"logprobs", "top_logprobs", "user", "service_tier", "parallel_tool_calls"}),
    ],
)
def test_each_dialect_carries_what_its_server_documents(dialect: str, left_out: set[str]) -> None:
    body = build_body(_ask(**ALL_SET), "m", stream=True, dialect=dialect)
    assert {key for key in ALL_SET if key in body} == set(ALL_SET) - left_out
    assert all(body[key] == ALL_SET[key] for key in ALL_SET if key in body)


def test_an_unset_parameter_adds_nothing_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    body = build_body(_ask(top_p=None), "m", stream=False)
    assert set(body) == {"model", "messages", "stream"}
    assert _left_out(caplog) == ""


def test_extra_body_is_merged_last_and_wins() -> None:
    body = build_body(
        _ask(seed=1, extra_body={"seed": 2, "min_p": 0.05, "reasoning_effort": "low"}),
        "m",
        stream=False,
        dialect="vllm",
    )
    assert (body["seed"], body["min_p"], body["reasoning_effort"]) == (2, 0.05, "low")


def _ollama() -> OllamaClient:
    client = build_backends(config_for({"name": "ollama", "api": "native", "num_ctx": 8192}))[
        Provider.OLLAMA
    ]
    assert isinstance(client, OllamaClient)
    return client


def test_ollama_native_puts_sampling_in_options_and_leaves_out_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    body = _ollama().native_body(_ask(max_tokens=64, **ALL_SET), "qwen3", stream=False)
    assert body["options"] == {
        "num_ctx": 8192,
        "num_predict": 64,
        "top_p": 0.5,
        "top_k": 40,
        "seed": 7,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
    }
    assert not {"logit_bias", "logprobs", "user", "service_tier"} & set(body)
    logged = _left_out(caplog)
    assert "ollama (native) takes no" in logged
    assert "logit_bias, logprobs, parallel_tool_calls, service_tier, top_logprobs, user" in logged


def test_ollama_extra_body_adds_to_options_and_sets_top_level_fields() -> None:
    body = _ollama().native_body(
        _ask(seed=3, extra_body={"options": {"repeat_penalty": 1.1}, "keep_alive": "10m"}),
        "qwen3",
        stream=True,
    )
    assert body["options"] == {"num_ctx": 8192, "seed": 3, "repeat_penalty": 1.1}
    assert body["keep_alive"] == "10m"


def test_anthropic_takes_top_p_top_k_and_user_as_metadata(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    client = AnthropicClient(default_model="claude-3-5-haiku-latest", env={})
    body = client.body(_ask(**ALL_SET, extra_body={"service_tier": "auto"}), "claude", stream=False)
    assert (body["top_p"], body["top_k"], body["metadata"]) == (0.5, 40, {"user_id": "user-42"})
    assert "user" not in body
    assert body["service_tier"] == "auto"  # only through extra_body
    for absent in ("seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs"):
        assert absent not in body
    assert "anthropic takes no frequency_penalty, logit_bias, logprobs" in _left_out(caplog)


class _FakeLlama:
    """Just enough of ``llama_cpp.Llama`` for `create_chat_completion` to be called: forge
    catches the ``create_completion`` call it makes and reads its arguments."""

    chat_format = "chatml"
    received: dict[str, Any]

    def create_chat_completion(self, **kwargs: Any) -> Any:
        _FakeLlama.received = kwargs
        return self.create_completion(prompt=[1, 2, 3], **kwargs)

    def create_completion(self, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_gguf_passes_what_create_chat_completion_takes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="forge_core.parameters")
    generation = engine._GgufGeneration(
        _FakeLlama(), _ask(**ALL_SET, extra_body={"min_p": 0.05}), "smollm2"
    )
    kwargs = generation._completion_kwargs()
    for name in ("top_p", "top_k", "seed", "frequency_penalty", "presence_penalty"):
        assert kwargs[name] == ALL_SET[name]
    assert kwargs["logit_bias"] == {"50256": -100.0}
    assert (kwargs["logprobs"], kwargs["top_logprobs"], kwargs["min_p"]) == (True, 3, 0.05)
    assert "huggingface (GGUF) takes no parallel_tool_calls, service_tier, user" in _left_out(
        caplog
    )


def test_anthropic_spells_no_parallel_tool_calls_on_the_tool_choice() -> None:
    client = AnthropicClient(default_model="claude-3-5-haiku-latest", env={})
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    unforced = client.body(_ask(tools=[tool], parallel_tool_calls=False), "claude", stream=False)
    assert unforced["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    forced = client.body(
        _ask(tools=[tool], tool_choice="required", parallel_tool_calls=False), "c", stream=False
    )
    assert forced["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    allowed = client.body(_ask(tools=[tool], parallel_tool_calls=True), "claude", stream=False)
    assert "tool_choice" not in allowed and "parallel_tool_calls" not in allowed


def test_logit_bias_takes_int_token_ids_as_chatopenai_does() -> None:
    body = build_body(_ask(logit_bias={50256: -100, "42": 1}), "m", stream=False)
    assert json.loads(json.dumps(body))["logit_bias"] == {"50256": -100.0, "42": 1.0}
