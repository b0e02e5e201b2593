"""One contract, every provider: chat, stream, usage, async across event loops, error mapping.

Cloud providers and Ollama's native API play hand-written cassettes here. The same contract for
Ollama's ``/v1`` surface and a generic OpenAI-compatible base URL, which run against
llama-cpp-python's real server, is in test_provider_contract_local_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import pytest
from forge_cassettes import use_cassette
from forge_core import ChatRequest, ModelNotFound, Provider, ProviderError, RateLimited
from forge_provider_support import (
    FORCE_WEATHER,
    FORCED_WEATHER_REQUEST,
    assert_provider_error,
    assert_streamed_tool_calls_complete,
    assert_text_answer,
    assert_text_stream,
    backend_for,
    chat_request,
    weather_tool,
)
from forge_test_support import attempt_timeouts


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
        chat=chat_request(HELLO, system="be brief", max_tokens=12),
        stream=chat_request(HELLO, max_tokens=12),
        failing=chat_request("status 429"),
        error=RateLimited,
        cassettes=("openai_chat.yaml", "openai_stream.yaml", "openai_errors.yaml"),
        spec={"name": "openai", "api_key_env": "OPENAI_API_KEY"},
    ),
    Case(
        Provider.OPENROUTER,
        "meta-llama/llama-3.1-8b-instruct",
        chat=chat_request(HELLO, max_tokens=12),
        stream=chat_request(HELLO, max_tokens=12),
        failing=chat_request("status 429"),
        error=RateLimited,
        cassettes=("openrouter.yaml",) * 3,
        spec={"name": "openrouter", "api_key_env": "OPENROUTER_API_KEY"},
    ),
    Case(
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        chat=chat_request(HELLO, system="You are terse."),
        stream=chat_request(HELLO, system="You are terse.", max_tokens=24),
        failing=chat_request("status 429", max_tokens=8),
        error=RateLimited,
        cassettes=("anthropic_messages.yaml", "anthropic_stream.yaml", "anthropic_errors.yaml"),
        spec={"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
    ),
    Case(
        Provider.OLLAMA,
        "llama3.2",
        chat=chat_request(HELLO, system="be brief", temperature=0, max_tokens=12),
        stream=chat_request(HELLO, max_tokens=12),
        failing=chat_request(HELLO),
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


def test_chat_answers_with_content_and_usage(case: Case) -> None:
    backend, pool = backend_for(case.spec, case.provider)
    with _played(case, "chat"):
        answer = backend.chat(case.chat, case.model, attempt_timeouts())
    pool.close()
    assert_text_answer(answer, case.provider)


def test_stream_yields_text_then_one_finish_and_at_most_one_usage(case: Case) -> None:
    backend, pool = backend_for(case.spec, case.provider)
    with _played(case, "stream"):
        chunks = list(backend.stream(case.stream, case.model, attempt_timeouts()))
    pool.close()
    assert_text_stream(chunks, case.provider)
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1 and usages[0].output_tokens > 0


def test_async_chat_works_in_two_event_loops_in_a_row(case: Case) -> None:
    backend, pool = backend_for(case.spec, case.provider)

    async def ask() -> str | None:
        return (await backend.achat(case.chat, case.model, attempt_timeouts())).content

    with _played(case, "chat"):
        first = asyncio.run(ask())
        second = asyncio.run(ask())
    pool.close()
    assert first and second


def test_failure_maps_to_the_forge_error_hierarchy(case: Case) -> None:
    backend, pool = backend_for(case.spec, case.provider)
    model = "llama9" if case.error is ModelNotFound else case.model
    with _played(case, "failure"), pytest.raises(ProviderError) as caught:
        backend.chat(case.failing, model, attempt_timeouts())
    pool.close()
    assert_provider_error(
        caught.value, case.error, case.provider, retryable=case.error is not ModelNotFound
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
        chat_request(
            "weather in Paris, twice?",
            tools=[weather_tool("city", strict=True)],
            tool_choice="required",
        ),
        spec={"name": "openai", "api_key_env": "OPENAI_API_KEY"},
        cassette="openai_stream.yaml",
    ),
    ToolCase(
        Provider.OPENROUTER,
        "openai/gpt-4o",
        FORCED_WEATHER_REQUEST,
        spec={"name": "openrouter", "api_key_env": "OPENROUTER_API_KEY"},
        cassette="openrouter.yaml",
    ),
    ToolCase(
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        chat_request(
            "Weather in Paris, twice?",
            tools=[weather_tool("location")],
            tool_choice=FORCE_WEATHER,
            max_tokens=128,
        ),
        spec={"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
        cassette="anthropic_tool_use_stream.yaml",
    ),
    ToolCase(
        Provider.OLLAMA,
        "llama3.2",
        chat_request("weather in Tokyo, twice?", tools=[weather_tool("city")]),
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
    backend, pool = backend_for(tool_case.spec, tool_case.provider)
    with use_cassette(tool_case.cassette):
        chunks = list(backend.stream(tool_case.request, tool_case.model, attempt_timeouts()))
    pool.close()
    assert_streamed_tool_calls_complete(chunks)
