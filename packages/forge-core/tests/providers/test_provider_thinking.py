"""Reasoning out, in and back per provider, against cassettes of the documented formats
(docs/providers.md): Anthropic's signed ``thinking`` and ``redacted_thinking`` blocks (answered,
streamed, and sent back after a tool call), Ollama's native ``think`` / ``message.thinking``,
and the reasoning fields on each OpenAI-compatible dialect's wire."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, body_of, use_cassette
from forge_core import (
    CapabilityMismatch,
    ChatRequest,
    Message,
    Provider,
    ReasoningPart,
    TextPart,
    ToolCall,
)
from forge_core.backends import AnthropicClient, OllamaClient
from forge_core.backends.http.openai.wire import build_body
from forge_provider_support import weather_tool
from forge_test_support import attempt_timeouts

MODEL = "claude-sonnet-4-5"
SIGNATURE = (
    "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds3yHlWM5JXbzQWDrHTTJ5SYvg0V9pWcKyLEUHE1CYd"
    "J6qWeOqbTz2pvtB1KxaiqVH6UFmU3TN0Gy7Q4S9wVjuKvYULMjLXWTBWrOeHUzDQMNGHpmpZvE7vGSOcCZHXdvGxs5wKRz"
    "qsB3QPvfO4cqtHaTUiEIJ1Sam5YdxfRKXQOU0l5KbcGp5cC6YXWcx7NcYpHgVf4AwAmbcFl4b4V9yWNUNMS7UCbuFBKp7v"
    "5E0oLyGXyULEjNHD1Fzn=="
)
REDACTED = (
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"
    "9JUQd0tOBNZLvqZ26Xg=="
)
THOUGHT = "The user wants the weather in Paris; I should call get_weather."


@pytest.fixture
def anthropic(pool: RecordingPool) -> AnthropicClient:
    return AnthropicClient(default_model=MODEL, pool=pool, env=CANARY_KEYS)


@pytest.fixture
def ollama(pool: RecordingPool) -> OllamaClient:
    return OllamaClient(
        "http://localhost:11434", default_model="qwen3", num_ctx=8192, keep_alive="10m", pool=pool
    )


def _weather_request(*messages: Message) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content="Weather in Paris?"), *messages],
        tools=[weather_tool("location")],
        tool_choice="auto",
        max_tokens=1024,
        temperature=0.2,
        reasoning_budget=2048,
    )


@use_cassette("anthropic_thinking.yaml")
def test_anthropic_thinking_is_asked_with_a_budget_and_comes_back_signed(
    anthropic: AnthropicClient, pool: RecordingPool
) -> None:
    answer = anthropic.chat(_weather_request(), MODEL, attempt_timeouts())

    sent = body_of(pool.sent[0])
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # max_tokens counts the thinking too: the answer's 1024 come on top of the budget, and
    # thinking takes no temperature but 1.
    assert sent["max_tokens"] == 3072
    assert "temperature" not in sent
    assert answer.reasoning_parts == [
        ReasoningPart(text=THOUGHT, signature=SIGNATURE, provider=Provider.ANTHROPIC),
        ReasoningPart(redacted=REDACTED, provider=Provider.ANTHROPIC),
    ]
    assert answer.reasoning == THOUGHT
    assert answer.content == "Let me check."
    assert [call.name for call in answer.tool_calls] == ["get_weather"]


@use_cassette("anthropic_thinking.yaml")
def test_anthropic_signed_thinking_goes_back_first_in_the_turn_that_called_a_tool(
    anthropic: AnthropicClient, pool: RecordingPool
) -> None:
    first = anthropic.chat(_weather_request(), MODEL, attempt_timeouts())
    call = first.tool_calls[0]
    result = Message(role="tool", content="15C, sunny", tool_call_id=call.id)

    second = anthropic.chat(_weather_request(first.to_message(), result), MODEL, attempt_timeouts())

    assert second.content == "It is 15C and sunny in Paris."
    assistant = body_of(pool.sent[1])["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED},
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_01ThkLabsLyVHZPKxbKvkfSM",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
        ],
    }


def test_anthropic_takes_back_only_its_own_signed_thinking(
    anthropic: AnthropicClient, caplog: pytest.LogCaptureFixture
) -> None:
    turn = Message(
        role="assistant",
        content=[
            ReasoningPart(text="unsigned"),
            ReasoningPart(text="from elsewhere", signature="x", provider=Provider.OPENROUTER),
            TextPart(text="Hi."),
        ],
    )
    request = ChatRequest(messages=[Message(role="user", content="Hi"), turn])
    with caplog.at_level(logging.DEBUG, logger="forge_core.parameters"):
        body = anthropic.body(request, MODEL, stream=False)
    assert body["messages"][1] == {"role": "assistant", "content": "Hi."}
    assert "2 part(s) left out" in caplog.text


@use_cassette("anthropic_thinking.yaml")
async def test_anthropic_streamed_thinking_comes_before_the_text_and_whole_at_the_end(
    anthropic: AnthropicClient,
) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Is 1001 prime?")],
        max_tokens=1024,
        reasoning_effort="medium",
    )
    chunks = [chunk async for chunk in anthropic.astream(request, MODEL, attempt_timeouts())]

    pieces = [(c.reasoning, c.content) for c in chunks if c.reasoning or c.content]
    assert pieces == [
        ("1001 = 7 * 143", ""),
        (" = 7 * 11 * 13.", ""),
        ("", "No: "),
        ("", "7 * 11 * 13."),
    ]
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.reasoning_parts == [
        ReasoningPart(
            text="1001 = 7 * 143 = 7 * 11 * 13.", signature=SIGNATURE, provider="anthropic"
        ),
        ReasoningPart(redacted=REDACTED, provider=Provider.ANTHROPIC),
    ]


def test_anthropic_leaves_thinking_out_when_a_tool_call_is_forced(
    anthropic: AnthropicClient,
) -> None:
    request = _weather_request().model_copy(update={"tool_choice": "required"})
    body = anthropic.body(request, MODEL, stream=False)
    assert "thinking" not in body
    assert body["tool_choice"] == {"type": "any"}


def test_anthropic_sends_no_thinking_unless_asked(anthropic: AnthropicClient) -> None:
    request = ChatRequest(messages=[Message(role="user", content="Hi")], reasoning=False)
    assert "thinking" not in anthropic.body(request, MODEL, stream=False)


# -- Ollama's native API ---------------------------------------------------------------------


@use_cassette("ollama_thinking.yaml")
def test_ollama_thinking_is_asked_per_request_and_comes_back_apart(
    ollama: OllamaClient, pool: RecordingPool
) -> None:
    request = ChatRequest(messages=[Message(role="user", content="Is 1001 prime?")], reasoning=True)
    answer = ollama.chat(request, "qwen3", attempt_timeouts())
    assert body_of(pool.sent[0])["think"] is True
    assert (answer.reasoning, answer.content) == (
        "1001 = 7 * 143 = 7 * 11 * 13.",
        "No: 7 * 11 * 13.",
    )
    assert answer.reasoning_parts == [ReasoningPart(text="1001 = 7 * 143 = 7 * 11 * 13.")]


@use_cassette("ollama_thinking.yaml")
async def test_ollama_streams_thinking_first_and_takes_earlier_thinking_back(
    ollama: OllamaClient, pool: RecordingPool
) -> None:
    earlier = ChatRequest(messages=[Message(role="user", content="Is 1001 prime?")], reasoning=True)
    answer = ollama.chat(earlier, "qwen3", attempt_timeouts())
    follow_up = earlier.model_copy(
        update={
            "messages": [
                *earlier.messages,
                answer.to_message(),
                Message(role="user", content="And 1003?"),
            ]
        }
    )
    chunks = [chunk async for chunk in ollama.astream(follow_up, "qwen3", attempt_timeouts())]

    assert body_of(pool.sent[1])["messages"][1] == {
        "role": "assistant",
        "content": "No: 7 * 11 * 13.",
        "thinking": "1001 = 7 * 143 = 7 * 11 * 13.",
    }
    assert [(c.reasoning, c.content) for c in chunks if c.reasoning or c.content] == [
        ("1003 = 17", ""),
        (" * 59.", ""),
        ("", "No: "),
        ("", "17 * 59."),
    ]


@use_cassette("ollama_thinking.yaml")
def test_ollama_sends_a_level_to_models_that_take_levels_only(
    ollama: OllamaClient, pool: RecordingPool
) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Is 1001 prime?")], reasoning_effort="high"
    )
    answer = ollama.chat(request, "gpt-oss:20b", attempt_timeouts())
    assert body_of(pool.sent[0])["think"] == "high"
    assert answer.reasoning == "7 divides it."


@use_cassette("ollama_thinking.yaml")
def test_an_ollama_model_without_thinking_is_a_capability_mismatch(ollama: OllamaClient) -> None:
    request = ChatRequest(messages=[Message(role="user", content="Is 1001 prime?")], reasoning=True)
    with pytest.raises(CapabilityMismatch, match="does not support thinking"):
        ollama.chat(request, "llama3.2", attempt_timeouts())


def test_ollama_reasoning_false_turns_the_configured_think_off(pool: RecordingPool) -> None:
    client = OllamaClient(default_model="qwen3", think=True, pool=pool)
    plain = ChatRequest(messages=[Message(role="user", content="Hi")])
    off = ChatRequest(messages=plain.messages, reasoning=False)
    assert client.native_body(plain, "qwen3", stream=False)["think"] is True
    assert client.native_body(off, "qwen3", stream=False)["think"] is False


# -- OpenAI-compatible dialects ----------------------------------------------------------------


def _ask(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="Hi")], **fields)


@pytest.mark.parametrize(
    ("dialect", "fields", "expected"),
    [
        ("openai", {"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        ("vllm", {"reasoning_effort": "low"}, {"reasoning_effort": "low"}),
        ("ollama", {"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
        ("ollama", {"reasoning": False}, {"reasoning_effort": "none"}),
        ("openrouter", {"reasoning_effort": "high"}, {"reasoning": {"effort": "high"}}),
        # A budget goes as the highest level whose tokens it reaches.
        ("openai", {"reasoning_budget": 5000}, {"reasoning_effort": "medium"}),
        ("openai", {"reasoning_budget": 100}, {"reasoning_effort": "low"}),
        # No switch turns thinking on: the model's default stands.
        ("openai", {"reasoning": True}, {}),
        ("openai", {"reasoning": False}, {}),
        ("llama-cpp", {"reasoning_effort": "high"}, {}),
        ("llama-server", {"reasoning_effort": "high"}, {}),
        ("lmstudio", {"reasoning_effort": "high"}, {}),
    ],
)
def test_each_dialect_carries_the_reasoning_fields_it_takes(
    dialect: str, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = build_body(_ask(**fields), "m", stream=False, dialect=dialect)
    carried = {key: body[key] for key in ("reasoning_effort", "reasoning") if key in body}
    assert carried == expected


def test_a_reasoning_field_left_out_says_so_in_a_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="forge_core.parameters"):
        build_body(_ask(reasoning_effort="high"), "m", stream=False, dialect="llama-cpp")
    assert "llama-cpp takes no reasoning_effort; left out" in caplog.text


def test_reasoning_is_not_sent_back_to_openai_compatible_servers() -> None:
    turn = Message(
        role="assistant",
        content=[ReasoningPart(text="thought"), TextPart(text="4")],
        tool_calls=[ToolCall(id="c1", name="f")],
    )
    body = build_body(
        ChatRequest(messages=[Message(role="user", content="2+2?"), turn]), "m", stream=False
    )
    assistant = body["messages"][1]
    assert assistant["content"] == "4"
    assert "reasoning_content" not in assistant and "reasoning" not in assistant
