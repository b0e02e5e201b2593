"""The provider contract of test_provider_contract.py against llama-cpp-python's real server.

Ollama's ``/v1`` surface and a generic OpenAI-compatible base URL both reach the ``local_server``
fixture (``tool_server`` for tool calls). Two differences from the cassettes: the server ignores
``stream_options.include_usage``, so a stream carries no usage, and failures come from a port
that refuses connections (the failure test needs no server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from forge_core import OllamaUnavailable, Provider, ProviderError, ProviderUnavailable
from forge_provider_support import (
    FORCED_WEATHER_REQUEST,
    assert_provider_error,
    assert_streamed_tool_calls_complete,
    assert_text_answer,
    assert_text_stream,
    backend_for,
    chat_request,
)
from forge_test_support import (
    LocalServer,
    attempt_timeouts,
    closed_port_url,
    ollama_on,
    openai_compatible_on,
)

pytestmark = pytest.mark.local_server


@dataclass
class Case:
    """How one surface of the server is reached, and how it is reached when nothing listens."""

    provider: Provider
    spec: Callable[[LocalServer], dict[str, Any]]
    failing_spec: Callable[[], dict[str, Any]]
    error: type[ProviderError]


REQUEST = chat_request("Say hello.", max_tokens=8)
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


def test_chat_answers_with_content_and_usage(case: Case, local_server: LocalServer) -> None:
    backend, pool = backend_for(case.spec(local_server), case.provider)
    answer = backend.chat(REQUEST, backend.default_model(), attempt_timeouts())
    pool.close()
    assert_text_answer(answer, case.provider)


def test_stream_yields_text_then_one_finish_and_at_most_one_usage(
    case: Case, local_server: LocalServer
) -> None:
    backend, pool = backend_for(case.spec(local_server), case.provider)
    chunks = list(backend.stream(REQUEST, backend.default_model(), attempt_timeouts()))
    pool.close()
    assert_text_stream(chunks, case.provider)
    # llama-cpp-python's server ignores stream_options.include_usage: no usage when streaming.
    assert [chunk.usage for chunk in chunks if chunk.usage is not None] == []


def test_async_chat_works_in_two_event_loops_in_a_row(
    case: Case, local_server: LocalServer
) -> None:
    backend, pool = backend_for(case.spec(local_server), case.provider)

    async def ask() -> str | None:
        return (await backend.achat(REQUEST, backend.default_model(), attempt_timeouts())).content

    first = asyncio.run(ask())
    second = asyncio.run(ask())
    pool.close()
    assert first and second


def test_failure_maps_to_the_forge_error_hierarchy(case: Case) -> None:
    backend, pool = backend_for(case.failing_spec(), case.provider)
    with pytest.raises(ProviderError) as caught:
        backend.chat(REQUEST, backend.default_model() or "m", attempt_timeouts())
    pool.close()
    assert_provider_error(caught.value, case.error, case.provider, retryable=True)


@pytest.fixture(params=CASES, ids=IDS)
def tool_case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def test_streamed_tool_calls_arrive_complete_with_stable_real_ids(
    tool_case: Case, tool_server: LocalServer
) -> None:
    backend, pool = backend_for(tool_case.spec(tool_server), tool_case.provider)
    chunks = list(
        backend.stream(FORCED_WEATHER_REQUEST, backend.default_model(), attempt_timeouts())
    )
    pool.close()
    assert_streamed_tool_calls_complete(chunks)
