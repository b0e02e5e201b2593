"""The GGUF path of the ``huggingface`` provider, on the real embedded Gemma 3 270M in process.

Its comparison with llama-cpp-python's server is in test_local_gguf_local_server.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from forge_core import (
    BadRequest,
    CapabilityMismatch,
    ChatRequest,
    FallbackFailed,
    Forge,
    ForgeConfig,
    HuggingFaceConfig,
    Message,
    Provider,
    ToolCall,
)
from forge_core.backends.local import backend as _huggingface
from forge_core.backends.local import pool as _local_pool
from forge_core.backends.local.backend import HuggingFaceBackend
from forge_core.backends.local.engine import _ToolPlan, _wire_messages, chat_format_for
from forge_core.config.local_models import gpu_layers
from forge_test_support import attempt_timeouts, config_for, embedded_in_process

pytestmark = pytest.mark.local_model

llama_cpp = pytest.importorskip("llama_cpp")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


def backend(**settings: Any) -> HuggingFaceBackend:
    return HuggingFaceBackend(
        HuggingFaceConfig.model_validate(
            {"isolation": "thread", "models": [{"name": "gemma-3-270m"}], **settings}
        )
    )


def request(prompt: str, **params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=prompt)], **params)


@pytest.fixture(scope="module")
def gemma() -> HuggingFaceBackend:
    return backend()


@pytest.fixture(scope="module")
def forge() -> Forge:
    return Forge(config_for(embedded_in_process(isolation="thread")))


def loaded_instance() -> Any:
    [loaded] = [
        entry
        for entry in _local_pool.loaded_models()
        if entry.name == "gemma-3-270m" and entry.format == "gguf"
    ]
    return loaded.instances[0]


# -- chat format --------------------------------------------------------------------------------


def test_chat_format_prefers_config_then_the_gguf_template_then_chatml() -> None:
    template = {"tokenizer.chat_template": "{{ messages }}"}
    assert chat_format_for(template, "gemma") == "gemma"
    assert chat_format_for(template, None) == "chat_template.default"
    assert chat_format_for({"general.name": "x"}, None) == "chatml"


def test_embedded_base_model_runs_with_the_gemma_format(gemma: HuggingFaceBackend) -> None:
    gemma.warm()
    llama = loaded_instance()
    # The embedded GGUF carries no template of its own.
    assert "tokenizer.chat_template" not in llama.metadata
    assert llama.chat_format == "gemma"


def test_answer_is_the_one_llama_cpp_python_gives_for_the_same_settings(forge: Forge) -> None:
    # Sampling settings forge does not set keep llama-cpp-python's chat-call defaults, and
    # repeat_penalty is forge's documented one: the same instance, asked directly with that,
    # gives the same greedy answer, token for token.
    prompt = "Write a long story about a dragon."
    answer = forge.chat(prompt, model="huggingface:gemma-3-270m", temperature=0, max_tokens=48)
    direct = loaded_instance().create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        temperature=0,
        max_tokens=48,
        repeat_penalty=_huggingface.REPEAT_PENALTY,
    )
    assert answer.usage is not None
    assert answer.usage.output_tokens == direct["usage"]["completion_tokens"]
    assert answer.content == direct["choices"][0]["message"]["content"]


def test_gemma_format_puts_the_system_text_in_the_first_user_turn() -> None:
    conversation = ChatRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Hi"),
        ]
    )
    assert _wire_messages(conversation, "gemma", _ToolPlan.none()) == [
        {"role": "user", "content": "Be brief.\n\nHi"}
    ]
    assert _wire_messages(conversation, "chatml", _ToolPlan.none())[0] == {
        "role": "system",
        "content": "Be brief.",
    }


# -- device, context, threads -------------------------------------------------------------------


def test_device_maps_to_gpu_layer_offload() -> None:
    assert gpu_layers("cpu") == 0
    assert gpu_layers("cuda") == -1
    expected = -1 if llama_cpp.llama_supports_gpu_offload() else 0
    assert gpu_layers("auto") == expected


def test_n_ctx_and_threads_reach_the_loaded_model() -> None:
    # "cuda" asks for every layer offloaded; a CPU-only llama.cpp runs them on the CPU.
    small = backend(n_ctx=512, n_threads=1, device="cuda")
    small.warm()
    llama = next(
        entry.instances[0]
        for entry in _local_pool.loaded_models()
        if entry.instances[0].n_ctx() == 512
    )
    assert llama.context_params.n_threads == 1
    assert llama.model_params.n_gpu_layers == 2**31 - 1  # llama-cpp-python's "all" for -1
    assert small.capabilities("gemma-3-270m").context_window == 512


def test_prompt_longer_than_the_context_is_refused_before_generation() -> None:
    small = backend(n_ctx=256)
    long_prompt = "one two three four five six seven eight nine ten " * 40
    with pytest.raises(CapabilityMismatch) as caught:
        small.chat(request(long_prompt, max_tokens=4), "gemma-3-270m", attempt_timeouts())
    assert "256" in str(caught.value) and "before generation" in str(caught.value)
    [entry] = [e for e in _local_pool.loaded_models() if e.instances[0].n_ctx() == 256]
    # Nothing was evaluated: the context is empty and no token was generated.
    assert entry.instances[0].n_tokens == 0
    assert entry.output_tokens == 0


def test_prompt_that_fits_but_not_with_max_tokens_is_refused() -> None:
    small = backend(n_ctx=256)
    prompt = "one two three four five six seven eight nine ten " * 15
    with pytest.raises(CapabilityMismatch):
        small.chat(request(prompt, max_tokens=200), "gemma-3-270m", attempt_timeouts())
    answer = small.chat(request(prompt, max_tokens=4), "gemma-3-270m", attempt_timeouts())
    assert answer.usage is not None
    assert answer.usage.input_tokens + 4 <= 256
    assert 0 < answer.usage.output_tokens <= 4


def test_context_refusal_is_a_capability_failure_in_the_route() -> None:
    forge = Forge(config_for(embedded_in_process(n_ctx=256)))
    with pytest.raises(FallbackFailed) as caught:
        # ~200 tokens by the router's 4-characters estimate, so it is tried; ~400 in truth.
        forge.chat("a " * 400, max_tokens=4)
    [attempt] = caught.value.attempts
    assert attempt.provider is Provider.HUGGINGFACE and attempt.error_kind == "capability"


# -- tools and JSON -------------------------------------------------------------------------------


def test_capabilities_report_tools_and_structured_output(gemma: HuggingFaceBackend) -> None:
    capabilities = gemma.capabilities("gemma-3-270m")
    assert capabilities.tools and capabilities.tool_choice
    assert capabilities.structured_output and capabilities.json_mode


def test_named_tool_choice_returns_a_call_matching_the_schema(forge: Forge) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    first = forge.chat(
        "What is the weather in Paris?", tools=[WEATHER, ADD], tool_choice=choice, max_tokens=24
    )
    second = forge.chat(
        "What is the weather in Rome?", tools=[WEATHER, ADD], tool_choice=choice, max_tokens=24
    )
    for answer in (first, second):
        [call] = answer.tool_calls
        assert isinstance(call, ToolCall)
        assert call.name == "get_weather" and isinstance(call.arguments["city"], str)
        assert answer.finish_reason == "tool_calls" and answer.content is None
        assert call.id.startswith("call_")
    assert first.tool_calls[0].id != second.tool_calls[0].id


def test_required_tool_choice_picks_one_of_the_tools(forge: Forge) -> None:
    answer = forge.chat("Add 2 and 3.", tools=[WEATHER, ADD], tool_choice="required", max_tokens=24)
    [call] = answer.tool_calls
    if call.name == "add":
        assert isinstance(call.arguments["a"], int) and isinstance(call.arguments["b"], int)
    else:
        assert call.name == "get_weather" and isinstance(call.arguments["city"], str)


def test_streamed_tool_call_arrives_whole_on_the_last_chunk(forge: Forge) -> None:
    chunks = list(
        forge.stream(
            "Weather in Oslo?",
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=24,
        )
    )
    assert all(not chunk.content for chunk in chunks)
    [delta] = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert delta.name == "get_weather" and delta.id and delta.id.startswith("call_")
    assert isinstance(json.loads(delta.arguments)["city"], str)
    assert chunks[-1].finish_reason == "tool_calls"


def test_tool_result_round_trip_answers_in_text(forge: Forge) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    answer = forge.chat(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
        ],
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=8,
    )
    assert answer.tool_calls == [] and answer.content


def test_tool_choice_naming_an_unknown_tool_is_a_bad_request(gemma: HuggingFaceBackend) -> None:
    choice = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(BadRequest):
        gemma.chat(
            request("hi", tools=[WEATHER], tool_choice=choice, max_tokens=4),
            "gemma-3-270m",
            attempt_timeouts(),
        )


def test_json_object_with_a_schema_is_constrained(forge: Forge) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    answer = forge.chat(
        "Is the sky blue? Answer as JSON.",
        response_format={"type": "json_object", "schema": schema},
        max_tokens=24,
    )
    assert isinstance(json.loads(answer.content or "")["ok"], bool)


def test_tool_call_cut_off_by_max_tokens_is_a_clear_bad_request(forge: Forge) -> None:
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(
            "Weather in Paris?",
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=2,
        )
    [attempt] = caught.value.attempts
    assert attempt.error_kind == "bad_request" and "max_tokens" in (attempt.message or "")


def test_forge_config_default_keeps_the_embedded_model_working() -> None:
    forge = Forge(
        ForgeConfig.model_validate({"providers": {"fallback": {"order": ["huggingface"]}}})
    )
    answer = forge.chat("Hello", max_tokens=3)
    assert answer.provider is Provider.HUGGINGFACE and answer.content


def test_configured_chat_format_wins_and_keeps_the_system_turn(embedded_model: Path) -> None:
    chatml = HuggingFaceBackend(
        HuggingFaceConfig.model_validate(
            {
                "isolation": "thread",
                "models": [
                    {"name": "m", "local_path": str(embedded_model), "chat_format": "chatml"}
                ],
            }
        )
    )
    conversation = ChatRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Hi"),
        ],
        max_tokens=2,
    )
    answer = chatml.chat(conversation, "m", attempt_timeouts())
    [entry] = [e for e in _local_pool.loaded_models() if e.name == "m"]
    assert entry.instances[0].chat_format == "chatml"
    prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    expected = len(entry.instances[0].tokenize(prompt.encode(), add_bos=True, special=True))
    assert answer.usage is not None and answer.usage.input_tokens == expected


def test_chat_format_that_cannot_run_in_process_is_a_capability_mismatch(
    embedded_model: Path,
) -> None:
    unusable = HuggingFaceBackend(
        HuggingFaceConfig.model_validate(
            {
                "n_ctx": 256,
                "models": [
                    {
                        "name": "f",
                        "local_path": str(embedded_model),
                        "chat_format": "functionary-v2",
                    }
                ],
            }
        )
    )
    with pytest.raises(CapabilityMismatch, match="functionary-v2"):
        unusable.chat(request("Hi", max_tokens=2), "f", attempt_timeouts())


def test_auto_tool_choice_gives_a_whole_call_or_text_and_streams_the_same(forge: Forge) -> None:
    params: dict[str, Any] = {
        "tools": [WEATHER],
        "tool_choice": "auto",
        "max_tokens": 24,
        "temperature": 0,
    }
    answer = forge.chat("Say hello to Ana.", **params)
    chunks = list(forge.stream("Say hello to Ana.", **params))
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    if answer.tool_calls:
        [call] = answer.tool_calls
        assert call.name == "get_weather" and answer.content is None
        assert [delta.name for delta in deltas] == ["get_weather"]
    else:
        # Text answers stream from their first character: nothing held back or lost.
        assert answer.content and not deltas
        assert "".join(chunk.content for chunk in chunks) == answer.content
        assert not answer.content.lstrip().startswith("{")


def test_auto_tool_choice_switches_to_the_call_grammar_when_the_answer_opens_a_call(
    embedded_model: Path,
) -> None:
    # With ChatML the base model echoes the user turn, so an answer that opens with "{" is
    # reliably produced: the free start is dropped and the call generated under the grammar.
    forge = Forge(
        config_for(
            {
                "name": "huggingface",
                "models": [
                    {"name": "m", "local_path": str(embedded_model), "chat_format": "chatml"}
                ],
            }
        )
    )
    params: dict[str, Any] = {
        "tools": [WEATHER, ADD],
        "tool_choice": "auto",
        "max_tokens": 32,
        "temperature": 0,
    }
    prompt = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    answer = forge.chat(prompt, **params)
    [call] = answer.tool_calls
    assert call.name == "get_weather" and call.arguments == {"city": "Oslo"}
    assert answer.content is None and answer.finish_reason == "tool_calls"
    chunks = list(forge.stream(prompt, **params))
    assert all(not chunk.content for chunk in chunks)
    [delta] = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert delta.name == "get_weather" and json.loads(delta.arguments) == {"city": "Oslo"}
