"""The provider contract of test_provider_contract.py against llama-cpp-python's real server.

Ollama's ``/v1`` surface and a generic OpenAI-compatible base URL both reach the ``local_server``
fixture (``tool_server`` for tool calls). Two differences from the cassettes: the server ignores
``stream_options.include_usage``, so a stream carries no usage, and failures come from a port
that refuses connections (the failure test needs no server).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool
from forge_core import (
    ChatRequest,
    Message,
    OllamaUnavailable,
    Provider,
    ProviderError,
    ProviderUnavailable,
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

pytestmark = pytest.mark.local_server


def _ask(*texts: str, **params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text) for text in texts], **params)


@dataclass
class Case:
    """How one surface of the server is reached, and how it is reached when nothing listens."""

    provider: Provider
    spec: Callable[[LocalServer], dict[str, Any]]
    failing_spec: Callable[[], dict[str, Any]]
    error: type[ProviderError]


REQUEST = _ask("Say hello.", max_tokens=8)
CASES = [
    Case(
        Provider.OLLAMA,
        spec=ollama_on,
        failing_spec=lambda: {"name": "ollama", "base_url": closed_port_url()},
        error=OllamaUnavailable,
    ),
    Case(
        Provider.OPENAI,
        spec=openai_compatible_on,
        failing_spec=lambda: {"name": "openai", "base_url": closed_port_url() + "/v1"},
        error=ProviderUnavailable,
    ),
]
IDS = ["ollama-v1-local-server", "openai-compatible-local-server"]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def _backend(spec: dict[str, Any], provider: Provider) -> tuple[ChatBackend, RecordingPool]:
    pool = RecordingPool()
    return build_backends(config_for(spec), pool=pool, env=CANARY_KEYS)[provider], pool


def test_chat_answers_with_content_and_usage(case: Case, local_server: LocalServer) -> None:
    backend, pool = _backend(case.spec(local_server), case.provider)
    answer = backend.chat(REQUEST, backend.default_model(), attempt_timeouts())
    pool.close()
    assert answer.content
    assert answer.provider is case.provider
    assert answer.finish_reason in {"stop", "length"}
    assert answer.usage is not None and answer.usage.output_tokens > 0
    assert answer.tool_calls == []


def test_stream_yields_text_then_one_finish_and_at_most_one_usage(
    case: Case, local_server: LocalServer
) -> None:
    backend, pool = _backend(case.spec(local_server), case.provider)
    chunks = list(backend.stream(REQUEST, backend.default_model(), attempt_timeouts()))
    pool.close()
    assert "".join(chunk.content for chunk in chunks)
    assert all(chunk.provider is case.provider for chunk in chunks)
    finishes = [chunk.finish_reason for chunk in chunks if chunk.finish_reason]
    assert len(finishes) == 1 and finishes[0] in {"stop", "length"}
    # llama-cpp-python's server ignores stream_options.include_usage: no usage when streaming.
    assert [chunk.usage for chunk in chunks if chunk.usage is not None] == []


def test_async_chat_works_in_two_event_loops_in_a_row(
    case: Case, local_server: LocalServer
) -> None:
    backend, pool = _backend(case.spec(local_server), case.provider)

    async def ask() -> str | None:
        return (await backend.achat(REQUEST, backend.default_model(), attempt_timeouts())).content

    first = asyncio.run(ask())
    second = asyncio.run(ask())
    pool.close()
    assert first and second


def test_failure_maps_to_the_forge_error_hierarchy(case: Case) -> None:
    backend, pool = _backend(case.failing_spec(), case.provider)
    with pytest.raises(ProviderError) as caught:
        backend.chat(REQUEST, backend.default_model() or "m", attempt_timeouts())
    pool.close()
    assert type(caught.value) is case.error
    assert caught.value.provider == case.provider.value
    assert caught.value.retryable is True
    assert all(key not in str(caught.value) for key in CANARY_KEYS.values())


FORCED = {"type": "function", "function": {"name": "get_weather"}}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Tokyo"]}},
            "required": ["city"],
        },
    },
}
TOOL_REQUEST = _ask("Weather in Paris?", tools=[WEATHER_TOOL], tool_choice=FORCED, max_tokens=24)


@pytest.fixture(params=CASES, ids=IDS)
def tool_case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def test_streamed_tool_calls_arrive_complete_with_stable_real_ids(
    tool_case: Case, tool_server: LocalServer
) -> None:
    backend, pool = _backend(tool_case.spec(tool_server), tool_case.provider)
    chunks = list(backend.stream(TOOL_REQUEST, backend.default_model(), attempt_timeouts()))
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
