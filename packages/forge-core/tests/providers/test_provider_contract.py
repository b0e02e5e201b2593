"""One contract, every provider: chat, stream, usage, async across event loops, error mapping.

Cloud providers and Ollama's native API play hand-written cassettes here. The same contract for
Ollama's ``/v1`` surface and a generic OpenAI-compatible base URL, which run against
llama-cpp-python's real server, is in test_provider_contract_local_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, use_cassette
from forge_core import ChatRequest, Message, ModelNotFound, Provider, ProviderError, RateLimited
from forge_core.providers import ChatBackend, build_backends
from forge_test_support import attempt_timeouts, config_for


def _ask(*texts: str, system: str | None = None, **params: Any) -> ChatRequest:
    messages = [Message(role="system", content=system)] if system else []
    messages += [Message(role="user", content=text) for text in texts]
    return ChatRequest(messages=messages, **params)


@dataclass
class Case:
    """How one provider is reached and which requests exercise the contract."""

    provider: Provider
    model: str
    chat: ChatRequest
    stream: ChatRequest
    failing: ChatRequest
    error: type[ProviderError]
    #: Cassettes for the chat, stream and failure behaviours (one vcrpy cassette is active at
    #: a time).
    cassettes: tuple[str, str, str]
    spec: dict[str, Any]


HELLO = "Say hello."
CASES = [
    Case(
        Provider.OPENAI,
        "gpt-4o-mini",
        chat=_ask(HELLO, system="be brief", max_tokens=12),
        stream=_ask(HELLO, max_tokens=12),
        failing=_ask("status 429"),
        error=RateLimited,
        cassettes=("openai_chat.yaml", "openai_stream.yaml", "openai_errors.yaml"),
        spec={"name": "openai", "api_key_env": "OPENAI_API_KEY"},
    ),
    Case(
        Provider.OPENROUTER,
        "meta-llama/llama-3.1-8b-instruct",
        chat=_ask(HELLO, max_tokens=12),
        stream=_ask(HELLO, max_tokens=12),
        failing=_ask("status 429"),
        error=RateLimited,
        cassettes=("openrouter.yaml",) * 3,
        spec={"name": "openrouter", "api_key_env": "OPENROUTER_API_KEY"},
    ),
    Case(
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        chat=_ask(HELLO, system="You are terse."),
        stream=_ask(HELLO, system="You are terse.", max_tokens=24),
        failing=_ask("status 429", max_tokens=8),
        error=RateLimited,
        cassettes=("anthropic_messages.yaml", "anthropic_stream.yaml", "anthropic_errors.yaml"),
        spec={"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
    ),
    Case(
        Provider.OLLAMA,
        "llama3.2",
        chat=_ask(HELLO, system="be brief", temperature=0, max_tokens=12),
        stream=_ask(HELLO, max_tokens=12),
        failing=_ask(HELLO),
        error=ModelNotFound,
        cassettes=("ollama_native.yaml",) * 3,
        spec={
            "name": "ollama",
            "base_url": "http://localhost:11434",
            "api": "native",
            "num_ctx": 8192,
            "keep_alive": "10m",
        },
    ),
]
IDS = ["openai-cassette", "openrouter-cassette", "anthropic-cassette", "ollama-native-cassette"]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


_BEHAVIOURS = ("chat", "stream", "failure")


def _played(case: Case, behaviour: str) -> contextlib.AbstractContextManager[Any]:
    return use_cassette(case.cassettes[_BEHAVIOURS.index(behaviour)])  # type: ignore[no-any-return]


def _backend(spec: dict[str, Any], provider: Provider) -> tuple[ChatBackend, RecordingPool]:
    pool = RecordingPool()
    return build_backends(config_for(spec), pool=pool, env=CANARY_KEYS)[provider], pool


def test_chat_answers_with_content_and_usage(case: Case) -> None:
    backend, pool = _backend(case.spec, case.provider)
    with _played(case, "chat"):
        answer = backend.chat(case.chat, case.model, attempt_timeouts())
    pool.close()
    assert answer.content
    assert answer.provider is case.provider
    assert answer.finish_reason in {"stop", "length"}
    assert answer.usage is not None and answer.usage.output_tokens > 0
    assert answer.tool_calls == []


def test_stream_yields_text_then_one_finish_and_at_most_one_usage(case: Case) -> None:
    backend, pool = _backend(case.spec, case.provider)
    with _played(case, "stream"):
        chunks = list(backend.stream(case.stream, case.model, attempt_timeouts()))
    pool.close()
    assert "".join(chunk.content for chunk in chunks)
    assert all(chunk.provider is case.provider for chunk in chunks)
    finishes = [chunk.finish_reason for chunk in chunks if chunk.finish_reason]
    assert len(finishes) == 1 and finishes[0] in {"stop", "length"}
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1 and usages[0].output_tokens > 0


def test_async_chat_works_in_two_event_loops_in_a_row(case: Case) -> None:
    backend, pool = _backend(case.spec, case.provider)

    async def ask() -> str | None:
        return (await backend.achat(case.chat, case.model, attempt_timeouts())).content

    with _played(case, "chat"):
        first = asyncio.run(ask())
        second = asyncio.run(ask())
    pool.close()
    assert first and second


def test_failure_maps_to_the_forge_error_hierarchy(case: Case) -> None:
    backend, pool = _backend(case.spec, case.provider)
    model = "llama9" if case.error is ModelNotFound else case.model
    with _played(case, "failure"), pytest.raises(ProviderError) as caught:
        backend.chat(case.failing, model, attempt_timeouts())
    pool.close()
    assert type(caught.value) is case.error
    assert caught.value.provider == case.provider.value
    assert caught.value.retryable is (case.error is not ModelNotFound)
    assert all(key not in str(caught.value) for key in CANARY_KEYS.values())


def _weather_tool(parameter: str, *, strict: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {parameter: {"type": "string", **extra}},
                "required": [parameter],
            },
            **({"strict": True} if strict else {}),
        },
    }


FORCED = {"type": "function", "function": {"name": "get_weather"}}
LOCAL_TOOL_REQUEST = _ask(
    "Weather in Paris?",
    tools=[_weather_tool("city", enum=["Paris", "Tokyo"])],
    tool_choice=FORCED,
    max_tokens=24,
)


@dataclass
class ToolCase:
    """A provider whose stream carries tool calls, and the request that makes it call."""

    provider: Provider
    model: str
    request: ChatRequest
    spec: dict[str, Any]
    cassette: str


TOOL_CASES = [
    ToolCase(
        Provider.OPENAI,
        "gpt-4o-mini",
        _ask(
            "weather in Paris, twice?",
            tools=[_weather_tool("city", strict=True)],
            tool_choice="required",
        ),
        spec={"name": "openai", "api_key_env": "OPENAI_API_KEY"},
        cassette="openai_stream.yaml",
    ),
    ToolCase(
        Provider.OPENROUTER,
        "openai/gpt-4o",
        LOCAL_TOOL_REQUEST,
        spec={"name": "openrouter", "api_key_env": "OPENROUTER_API_KEY"},
        cassette="openrouter.yaml",
    ),
    ToolCase(
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        _ask(
            "Weather in Paris, twice?",
            tools=[_weather_tool("location")],
            tool_choice=FORCED,
            max_tokens=128,
        ),
        spec={"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
        cassette="anthropic_tool_use_stream.yaml",
    ),
    ToolCase(
        Provider.OLLAMA,
        "llama3.2",
        _ask("weather in Tokyo, twice?", tools=[_weather_tool("city")]),
        spec={
            "name": "ollama",
            "base_url": "http://localhost:11434",
            "api": "native",
            "num_ctx": 8192,
            "keep_alive": "10m",
        },
        cassette="ollama_native.yaml",
    ),
]


@pytest.fixture(params=TOOL_CASES, ids=IDS)
def tool_case(request: pytest.FixtureRequest) -> ToolCase:
    return request.param  # type: ignore[no-any-return]


def test_streamed_tool_calls_arrive_complete_with_stable_real_ids(tool_case: ToolCase) -> None:
    backend, pool = _backend(tool_case.spec, tool_case.provider)
    with use_cassette(tool_case.cassette):
        chunks = list(backend.stream(tool_case.request, tool_case.model, attempt_timeouts()))
    pool.close()
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    (final,) = [chunk for chunk in chunks if chunk.finish_reason]
    assert final.finish_reason == "tool_calls"
    calls = final.tool_calls
    assert calls and all(call.name == "get_weather" for call in calls)
    assert all(call.id and call.id != call.name for call in calls)
    assert len({call.id for call in calls}) == len(calls)
    # Every fragment carries the id of the call it belongs to, the same id the call ends with.
    assert [calls[delta.index].id for delta in deltas] == [delta.id for delta in deltas]
    for index, call in enumerate(calls):
        fragments = "".join(delta.arguments for delta in deltas if delta.index == index)
        assert json.loads(fragments) == call.arguments
        assert set(call.arguments) <= {"city", "location"} and call.arguments
