"""One contract, every provider: chat, stream, usage, async across event loops, error mapping.

Cloud providers (and Ollama's native API) play hand-written cassettes; Ollama's ``/v1`` surface
and a generic OpenAI-compatible base URL run against llama-cpp-python's real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, use_cassette
from forge_core import (
    ChatRequest,
    Message,
    ModelNotFound,
    OllamaUnavailable,
    Provider,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from forge_core.providers import ChatBackend, build_backends
from forge_test_support import (
    LocalServer,
    attempt_timeouts,
    closed_port_url,
    config_for,
    ollama_on,
    openai_compatible_on,
)


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
    #: a time), or None for the real local server.
    cassettes: tuple[str, str, str] | None = None
    spec: Callable[[LocalServer | None], dict[str, Any]] = field(default=lambda _: {})
    failing_spec: Callable[[], dict[str, Any]] | None = None
    local: bool = False
    #: llama-cpp-python's server ignores stream_options.include_usage: no usage when streaming.
    streams_usage: bool = True


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
        spec=lambda _: {"name": "openai", "api_key_env": "OPENAI_API_KEY"},
    ),
    Case(
        Provider.OPENROUTER,
        "meta-llama/llama-3.1-8b-instruct",
        chat=_ask(HELLO, max_tokens=12),
        stream=_ask(HELLO, max_tokens=12),
        failing=_ask("status 429"),
        error=RateLimited,
        cassettes=("openrouter.yaml",) * 3,
        spec=lambda _: {"name": "openrouter", "api_key_env": "OPENROUTER_API_KEY"},
    ),
    Case(
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        chat=_ask(HELLO, system="You are terse."),
        stream=_ask(HELLO, system="You are terse.", max_tokens=24),
        failing=_ask("status 429", max_tokens=8),
        error=RateLimited,
        cassettes=("anthropic_messages.yaml", "anthropic_stream.yaml", "anthropic_errors.yaml"),
        spec=lambda _: {"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
    ),
    Case(
        Provider.OLLAMA,
        "llama3.2",
        chat=_ask(HELLO, system="be brief", temperature=0, max_tokens=12),
        stream=_ask(HELLO, max_tokens=12),
        failing=_ask(HELLO),
        error=ModelNotFound,
        cassettes=("ollama_native.yaml",) * 3,
        spec=lambda _: {
            "name": "ollama",
            "base_url": "http://localhost:11434",
            "api": "native",
            "num_ctx": 8192,
            "keep_alive": "10m",
        },
    ),
    Case(
        Provider.OLLAMA,
        "",
        chat=_ask(HELLO, max_tokens=8),
        stream=_ask(HELLO, max_tokens=8),
        failing=_ask(HELLO, max_tokens=8),
        error=OllamaUnavailable,
        spec=lambda server: ollama_on(server) if server else {},
        failing_spec=lambda: {"name": "ollama", "base_url": closed_port_url()},
        local=True,
        streams_usage=False,
    ),
    Case(
        Provider.OPENAI,
        "",
        chat=_ask(HELLO, max_tokens=8),
        stream=_ask(HELLO, max_tokens=8),
        failing=_ask(HELLO, max_tokens=8),
        error=ProviderUnavailable,
        spec=lambda server: openai_compatible_on(server) if server else {},
        failing_spec=lambda: {"name": "openai", "base_url": closed_port_url() + "/v1"},
        local=True,
        streams_usage=False,
    ),
]
IDS = [
    "openai-cassette",
    "openrouter-cassette",
    "anthropic-cassette",
    "ollama-native-cassette",
    "ollama-v1-local-server",
    "openai-compatible-local-server",
]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(case: Case, request: pytest.FixtureRequest) -> LocalServer | None:
    if not case.local:
        return None
    return request.getfixturevalue("local_server")  # type: ignore[no-any-return]


_BEHAVIOURS = ("chat", "stream", "failure")


def _played(case: Case, behaviour: str) -> contextlib.AbstractContextManager[Any]:
    if case.cassettes is None:
        return contextlib.nullcontext()
    return use_cassette(case.cassettes[_BEHAVIOURS.index(behaviour)])  # type: ignore[no-any-return]


def _backend(spec: dict[str, Any], provider: Provider) -> tuple[ChatBackend, RecordingPool]:
    pool = RecordingPool()
    return build_backends(config_for(spec), pool=pool, env=CANARY_KEYS)[provider], pool


def _model(case: Case, backend: ChatBackend) -> str:
    return case.model or backend.default_model()


def test_chat_answers_with_content_and_usage(case: Case, server: LocalServer | None) -> None:
    backend, pool = _backend(case.spec(server), case.provider)
    with _played(case, "chat"):
        answer = backend.chat(case.chat, _model(case, backend), attempt_timeouts())
    pool.close()
    assert answer.content
    assert answer.provider is case.provider
    assert answer.finish_reason in {"stop", "length"}
    assert answer.usage is not None and answer.usage.output_tokens > 0
    assert answer.tool_calls == []


def test_stream_yields_text_then_one_finish_and_at_most_one_usage(
    case: Case, server: LocalServer | None
) -> None:
    backend, pool = _backend(case.spec(server), case.provider)
    with _played(case, "stream"):
        chunks = list(backend.stream(case.stream, _model(case, backend), attempt_timeouts()))
    pool.close()
    assert "".join(chunk.content for chunk in chunks)
    assert all(chunk.provider is case.provider for chunk in chunks)
    finishes = [chunk.finish_reason for chunk in chunks if chunk.finish_reason]
    assert len(finishes) == 1 and finishes[0] in {"stop", "length"}
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    if case.streams_usage:
        assert len(usages) == 1 and usages[0].output_tokens > 0
    else:
        assert usages == []


def test_async_chat_works_in_two_event_loops_in_a_row(
    case: Case, server: LocalServer | None
) -> None:
    backend, pool = _backend(case.spec(server), case.provider)

    async def ask() -> str | None:
        return (await backend.achat(case.chat, _model(case, backend), attempt_timeouts())).content

    with _played(case, "chat"):
        first = asyncio.run(ask())
        second = asyncio.run(ask())
    pool.close()
    assert first and second


def test_failure_maps_to_the_forge_error_hierarchy(case: Case, server: LocalServer | None) -> None:
    spec = case.failing_spec() if case.failing_spec else case.spec(server)
    backend, pool = _backend(spec, case.provider)
    model = "llama9" if case.error is ModelNotFound else _model(case, backend) or "m"
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
    spec: Callable[[LocalServer | None], dict[str, Any]]
    cassette: str | None = None


TOOL_CASES = [
    ToolCase(
        Provider.OPENAI,
        "gpt-4o-mini",
        _ask(
            "weather in Paris, twice?",
            tools=[_weather_tool("city", strict=True)],
            tool_choice="required",
        ),
        spec=lambda _: {"name": "openai", "api_key_env": "OPENAI_API_KEY"},
        cassette="openai_stream.yaml",
    ),
    ToolCase(
        Provider.OPENROUTER,
        "openai/gpt-4o",
        LOCAL_TOOL_REQUEST,
        spec=lambda _: {"name": "openrouter", "api_key_env": "OPENROUTER_API_KEY"},
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
        spec=lambda _: {"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
        cassette="anthropic_tool_use_stream.yaml",
    ),
    ToolCase(
        Provider.OLLAMA,
        "llama3.2",
        _ask("weather in Tokyo, twice?", tools=[_weather_tool("city")]),
        spec=lambda _: {
            "name": "ollama",
            "base_url": "http://localhost:11434",
            "api": "native",
            "num_ctx": 8192,
            "keep_alive": "10m",
        },
        cassette="ollama_native.yaml",
    ),
    ToolCase(
        Provider.OLLAMA,
        "",
        LOCAL_TOOL_REQUEST,
        spec=lambda server: ollama_on(server) if server else {},
    ),
    ToolCase(
        Provider.OPENAI,
        "",
        LOCAL_TOOL_REQUEST,
        spec=lambda server: openai_compatible_on(server) if server else {},
    ),
]


@pytest.fixture(params=TOOL_CASES, ids=IDS)
def tool_case(request: pytest.FixtureRequest) -> ToolCase:
    return request.param  # type: ignore[no-any-return]


def test_streamed_tool_calls_arrive_complete_with_stable_real_ids(
    tool_case: ToolCase, request: pytest.FixtureRequest
) -> None:
    server = None if tool_case.cassette else request.getfixturevalue("tool_server")
    backend, pool = _backend(tool_case.spec(server), tool_case.provider)
    played = use_cassette(tool_case.cassette) if tool_case.cassette else contextlib.nullcontext()
    with played:
        chunks = list(
            backend.stream(
                tool_case.request, tool_case.model or backend.default_model(), attempt_timeouts()
            )
        )
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
