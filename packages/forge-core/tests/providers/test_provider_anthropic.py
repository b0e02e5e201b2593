"""The Anthropic Messages API client, against hand-written cassettes (docs/providers.md, Anthropic)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Generator

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, use_cassette
from forge_core import (
    AuthenticationFailed,
    BadRequest,
    ChatChunk,
    ChatRequest,
    Forge,
    ForgeTimeout,
    MalformedResponse,
    Message,
    ModelNotFound,
    Provider,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ToolCall,
)
from forge_core.backends import AnthropicClient, ModelCatalog, build_backends
from forge_provider_support import FORCE_WEATHER, chat_request, weather_tool
from forge_test_support import attempt_timeouts, config_for

MODEL = "claude-3-5-haiku-latest"
SERVED = "claude-3-5-haiku-20241022"
WEATHER_TOOL = weather_tool("location")


@pytest.fixture
def client(pool: RecordingPool) -> AnthropicClient:
    return AnthropicClient(default_model=MODEL, pool=pool, env=CANARY_KEYS)


def _collect(chunks: Generator[ChatChunk, None, None]) -> list[ChatChunk]:
    return list(chunks)


async def _acollect(chunks: AsyncGenerator[ChatChunk, None]) -> list[ChatChunk]:
    return [chunk async for chunk in chunks]


@use_cassette("anthropic_messages.yaml")
def test_text_answer_sends_system_top_level_and_defaults_max_tokens(
    client: AnthropicClient, pool: RecordingPool
) -> None:
    request = chat_request("Say hello.", system="You are terse.")
    answer = client.chat(request, MODEL, attempt_timeouts())
    assert answer.content == "Hello."
    assert answer.finish_reason == "stop"
    assert answer.model == SERVED
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (14, 4)
    (sent,) = pool.sent
    assert sent.headers["x-api-key"] == CANARY_KEYS["ANTHROPIC_API_KEY"]
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers


@use_cassette("anthropic_messages.yaml")
async def test_async_answer_matches_sync(client: AnthropicClient) -> None:
    request = chat_request("Say hello.", system="You are terse.")
    answer = await client.achat(request, MODEL, attempt_timeouts())
    assert answer.content == "Hello."
    assert answer.usage is not None and answer.usage.total_tokens == 18


@use_cassette("anthropic_messages.yaml")
def test_overrides_become_temperature_and_stop_sequences(client: AnthropicClient) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Count to ten.")],
        max_tokens=16,
        temperature=0.2,
        stop=["5"],
    )
    answer = client.chat(request, MODEL, attempt_timeouts())
    assert answer.content == "1, 2, 3, 4, "
    assert answer.finish_reason == "stop"


@use_cassette("anthropic_stream.yaml")
def test_stream_yields_text_skips_ping_and_ends_with_usage(client: AnthropicClient) -> None:
    request = chat_request("Say hello.", system="You are terse.", max_tokens=24)
    chunks = _collect(client.stream(request, MODEL, attempt_timeouts()))
    assert [chunk.content for chunk in chunks if chunk.content] == ["Hel", "lo."]
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    # output_tokens in message_delta is the cumulative count, not an increment.
    assert (last.usage.input_tokens, last.usage.output_tokens) == (14, 4)
    assert all(chunk.model == SERVED for chunk in chunks)


@use_cassette("anthropic_stream.yaml")
async def test_async_stream_matches_sync(client: AnthropicClient) -> None:
    request = chat_request("Say hello.", system="You are terse.", max_tokens=24)
    chunks = await _acollect(client.astream(request, MODEL, attempt_timeouts()))
    assert "".join(chunk.content for chunk in chunks) == "Hello."
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 4


@use_cassette("anthropic_tool_use.yaml")
def test_tool_use_round_trip(client: AnthropicClient) -> None:
    question = Message(role="user", content="Weather in Paris?")
    first = client.chat(
        ChatRequest(
            messages=[question], tools=[WEATHER_TOOL], tool_choice="required", max_tokens=64
        ),
        MODEL,
        attempt_timeouts(),
    )
    assert first.finish_reason == "tool_calls"
    assert first.content == "I'll check the weather."
    assert first.tool_calls == [
        ToolCall(
            id="toolu_01NRLabsLyVHZPKxbKvkfSMn", name="get_weather", arguments={"location": "Paris"}
        )
    ]
    follow_up = ChatRequest(
        messages=[
            Message(role="system", content="You are terse."),
            question,
            Message(role="assistant", content=first.content, tool_calls=first.tool_calls),
            Message(role="tool", tool_call_id=first.tool_calls[0].id, content="15C, sunny"),
        ],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        max_tokens=64,
    )
    second = client.chat(follow_up, MODEL, attempt_timeouts())
    assert second.content == "It is 15C and sunny in Paris."
    assert second.tool_calls == []


@use_cassette("anthropic_tool_use_stream.yaml")
def test_streamed_tool_calls_arrive_complete_with_stable_ids(client: AnthropicClient) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Weather in Paris, twice?")],
        tools=[WEATHER_TOOL],
        tool_choice=FORCE_WEATHER,
        max_tokens=128,
    )
    chunks = _collect(client.stream(request, MODEL, attempt_timeouts()))
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    ids_by_index: dict[int, set[str | None]] = {}
    for delta in deltas:
        ids_by_index.setdefault(delta.index, set()).add(delta.id)
    assert ids_by_index == {
        0: {"toolu_01NRLabsLyVHZPKxbKvkfSMn"},
        1: {"toolu_01T1x1fJ34qAmk2tNTrN7Up6"},
    }
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"location": "Paris"}'
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert [(call.id, call.name, call.arguments) for call in last.tool_calls] == [
        ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"}),
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", {"location": "Paris"}),
    ]
    assert last.usage is not None and last.usage.output_tokens == 89
    assert "".join(chunk.content for chunk in chunks) == "I'll check the weather."


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (400, BadRequest, None),
        (401, AuthenticationFailed, None),
        (402, AuthenticationFailed, None),
        (403, AuthenticationFailed, None),
        (404, ModelNotFound, None),
        (413, BadRequest, None),
        (429, RateLimited, 17.0),
        (500, ProviderUnavailable, None),
        (504, ForgeTimeout, None),
        (529, RateLimited, None),
    ],
)
@use_cassette("anthropic_errors.yaml")
def test_error_statuses_map_to_the_forge_hierarchy(
    client: AnthropicClient, status: int, error: type[ProviderError], retry_after: float | None
) -> None:
    request = ChatRequest(messages=[Message(role="user", content=f"status {status}")], max_tokens=8)
    with pytest.raises(error) as caught:
        client.chat(request, MODEL, attempt_timeouts())
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.provider == "anthropic"
    assert f"HTTP {status}" in str(caught.value)
    assert CANARY_KEYS["ANTHROPIC_API_KEY"] not in str(caught.value)
    if retry_after is not None:
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after == retry_after


@use_cassette("anthropic_stream_errors.yaml")
def test_in_stream_error_event_raises_after_the_text_it_sent(client: AnthropicClient) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Tell me a story.")], max_tokens=24
    )
    received: list[str] = []
    with pytest.raises(RateLimited, match="overloaded_error"):
        for chunk in client.stream(request, MODEL, attempt_timeouts()):
            received.append(chunk.content)
    assert "".join(received) == "Once upon"


@use_cassette("anthropic_stream_errors.yaml")
def test_overloaded_529_before_the_stream_is_rate_limited(client: AnthropicClient) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Tell me a short story.")], max_tokens=24
    )
    with pytest.raises(RateLimited) as caught:
        _collect(client.stream(request, MODEL, attempt_timeouts()))
    assert caught.value.status_code == 529
    assert caught.value.retry_after == 1.5


@use_cassette("anthropic_stream_errors.yaml")
async def test_stream_cut_before_message_stop_is_not_a_silent_success(
    client: AnthropicClient,
) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Tell me a long story.")], max_tokens=24
    )
    with pytest.raises(MalformedResponse, match="message_stop"):
        await _acollect(client.astream(request, MODEL, attempt_timeouts()))


@use_cassette("anthropic_models.yaml")
def test_list_models_follows_pages_and_health_probes_models(client: AnthropicClient) -> None:
    assert isinstance(client, ModelCatalog)
    models = client.list_models()
    assert [(m.id, m.name) for m in models] == [
        ("claude-sonnet-4-20250514", "Claude Sonnet 4"),
        ("claude-3-5-haiku-20241022", "Claude Haiku 3.5"),
    ]
    assert all(m.provider is Provider.ANTHROPIC for m in models)
    assert client.health() is True
    assert asyncio.run(client.ahealth()) is True


def test_missing_key_fails_before_any_network_call() -> None:
    client = AnthropicClient(default_model=MODEL, env={})
    with pytest.raises(AuthenticationFailed, match="ANTHROPIC_API_KEY"):
        client.check_ready(MODEL)
    assert client.health() is False


@use_cassette("anthropic_messages.yaml")
def test_forge_routes_to_anthropic_once_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEYS["ANTHROPIC_API_KEY"])
    config = config_for({"name": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"})
    assert isinstance(build_backends(config)[Provider.ANTHROPIC], AnthropicClient)
    pool = RecordingPool()
    try:
        answer = Forge(config, pool=pool).chat(
            [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello."},
            ],
            model=f"anthropic:{MODEL}",
        )
    finally:
        pool.close()
    assert answer.provider is Provider.ANTHROPIC
    assert answer.content == "Hello."
    assert [(a.provider, a.ok) for a in answer.route.attempts] == [(Provider.ANTHROPIC, True)]


@use_cassette("anthropic_messages.yaml")
def test_json_schema_output_goes_through_output_config(client: AnthropicClient) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    request = ChatRequest(
        messages=[Message(role="user", content="Name a colour.")],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema},
        },
        max_tokens=64,
    )
    answer = client.chat(request, "claude-sonnet-4-20250514", attempt_timeouts())
    assert json.loads(answer.content or "") == {"a": "blue"}
