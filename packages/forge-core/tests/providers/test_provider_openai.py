"""OpenAI and OpenRouter through the chat-completions client, against hand-written cassettes."""

from __future__ import annotations

import json

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, body_of, use_cassette
from forge_core import (
    AuthenticationFailed,
    BadRequest,
    ChatChunk,
    ChatRequest,
    Message,
    ModelNotFound,
    Provider,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ToolCall,
)
from forge_core.backends import ModelCatalog, OpenAICompatibleClient, build_backends
from forge_provider_support import weather_tool
from forge_test_support import attempt_timeouts, config_for

MODEL = "gpt-4o-mini"
ROUTER_MODEL = "meta-llama/llama-3.1-8b-instruct"
WEATHER_TOOL = weather_tool("city", strict=True)
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": False,
        },
    },
}


def _client(pool: RecordingPool, provider: Provider) -> OpenAICompatibleClient:
    config = config_for(
        {"name": "openai", "api_key_env": "OPENAI_API_KEY"},
        {
            "name": "openrouter",
            "api_key_env": "OPENROUTER_API_KEY",
            "app_url": "https://forge.example",
            "app_title": "forge tests",
        },
    )
    client = build_backends(config, pool=pool, env=CANARY_KEYS)[provider]
    assert isinstance(client, OpenAICompatibleClient)
    return client


@pytest.fixture
def openai(pool: RecordingPool) -> OpenAICompatibleClient:
    return _client(pool, Provider.OPENAI)


@pytest.fixture
def openrouter(pool: RecordingPool) -> OpenAICompatibleClient:
    return _client(pool, Provider.OPENROUTER)


def _ask(text: str, **params: object) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)  # type: ignore[arg-type]


@use_cassette("openai_chat.yaml")
def test_text_answer_with_usage_and_bearer_key(
    openai: OpenAICompatibleClient, pool: RecordingPool
) -> None:
    request = ChatRequest(
        messages=[
            Message(role="system", content="be brief"),
            Message(role="user", content="Say hello."),
        ],
        max_tokens=12,
    )
    answer = openai.chat(request, MODEL, attempt_timeouts())
    assert answer.content == "Hello!"
    assert answer.model == "gpt-4o-mini-2024-07-18"
    assert answer.usage is not None and answer.usage.total_tokens == 29
    (sent,) = pool.sent
    assert sent.headers["authorization"] == "Bearer " + CANARY_KEYS["OPENAI_API_KEY"]
    assert body_of(sent)["max_completion_tokens"] == 12


@use_cassette("openai_chat.yaml")
async def test_forced_tool_call_and_its_result_round_trip(openai: OpenAICompatibleClient) -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    first = await openai.achat(
        _ask("weather?", tools=[WEATHER_TOOL], tool_choice=forced), MODEL, attempt_timeouts()
    )
    assert first.finish_reason == "tool_calls"
    assert first.content is None
    assert first.tool_calls == [
        ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"})
    ]
    second = await openai.achat(
        ChatRequest(
            messages=[
                Message(role="user", content="weather?"),
                Message(role="assistant", tool_calls=first.tool_calls),
                Message(role="tool", tool_call_id="call_abc", content="11C"),
            ]
        ),
        MODEL,
        attempt_timeouts(),
    )
    assert second.content == "It is 11C in Paris."


@use_cassette("openai_chat.yaml")
def test_json_schema_and_json_object_are_sent_as_documented(
    openai: OpenAICompatibleClient,
) -> None:
    structured = openai.chat(
        _ask("Name a colour.", response_format=SCHEMA_FORMAT), MODEL, attempt_timeouts()
    )
    assert json.loads(structured.content or "") == {"a": "blue"}
    mode = openai.chat(
        _ask("Name a colour as JSON.", response_format={"type": "json_object"}),
        MODEL,
        attempt_timeouts(),
    )
    assert json.loads(mode.content or "") == {"colour": "green"}


@use_cassette("openai_stream.yaml")
def test_stream_with_include_usage_guards_the_empty_choices_chunk(
    openai: OpenAICompatibleClient,
) -> None:
    chunks = list(openai.stream(_ask("Say hello.", max_tokens=12), MODEL, attempt_timeouts()))
    assert "".join(chunk.content for chunk in chunks) == "Hello!"
    assert [chunk.finish_reason for chunk in chunks if chunk.finish_reason] == ["stop"]
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usage) == 1 and usage[0].total_tokens == 29


def _tool_stream(chunks: list[ChatChunk]) -> None:
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    # Every fragment carries its call's id, not only the first one.
    assert {(delta.index, delta.id, delta.name) for delta in deltas} == {
        (0, "call_abc", "get_weather"),
        (1, "call_def", "get_weather"),
    }
    (final,) = [chunk for chunk in chunks if chunk.finish_reason]
    assert final.finish_reason == "tool_calls"
    assert final.tool_calls == [
        ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_def", name="get_weather", arguments={"city": "Paris"}),
    ]


@use_cassette("openai_stream.yaml")
def test_streamed_tool_calls_arrive_complete_two_identical_calls_stay_two(
    openai: OpenAICompatibleClient,
) -> None:
    request = _ask("weather in Paris, twice?", tools=[WEATHER_TOOL], tool_choice="required")
    _tool_stream(list(openai.stream(request, MODEL, attempt_timeouts())))


@use_cassette("openai_stream.yaml")
async def test_async_streamed_tool_calls_match_sync(openai: OpenAICompatibleClient) -> None:
    request = _ask("weather in Paris, twice?", tools=[WEATHER_TOOL], tool_choice="required")
    _tool_stream([chunk async for chunk in openai.astream(request, MODEL, attempt_timeouts())])


@use_cassette("openai_stream.yaml")
def test_error_line_in_stream_raises_after_the_text(openai: OpenAICompatibleClient) -> None:
    received: list[str] = []
    with pytest.raises(ProviderUnavailable, match="server had an error"):
        for chunk in openai.stream(_ask("Tell me a story."), MODEL, attempt_timeouts()):
            received.append(chunk.content)
    assert received == ["Once"]


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (400, BadRequest, None),
        (401, AuthenticationFailed, None),
        (403, AuthenticationFailed, None),
        (404, ModelNotFound, None),
        (429, RateLimited, 2.5),
        (500, ProviderUnavailable, None),
        (503, ProviderUnavailable, None),
    ],
)
@use_cassette("openai_errors.yaml")
def test_openai_error_statuses_map(
    openai: OpenAICompatibleClient,
    status: int,
    error: type[ProviderError],
    retry_after: float | None,
) -> None:
    with pytest.raises(error) as caught:
        openai.chat(_ask(f"status {status}"), MODEL, attempt_timeouts())
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert "sk-abc" not in str(caught.value)
    if retry_after is not None:
        # retry-after-ms wins over the coarser Retry-After.
        assert isinstance(caught.value, RateLimited) and caught.value.retry_after == retry_after


@use_cassette("openai_models.yaml")
def test_openai_models_list_has_no_capability_metadata(openai: OpenAICompatibleClient) -> None:
    assert isinstance(openai, ModelCatalog)
    models = openai.list_models()
    assert [model.id for model in models] == ["gpt-4o-mini", "gpt-4o"]
    assert all(model.capabilities is None for model in models)
    assert openai.health() is True


@use_cassette("openrouter.yaml")
def test_openrouter_sends_attribution_headers_and_skips_keepalive_comments(
    openrouter: OpenAICompatibleClient, pool: RecordingPool
) -> None:
    chunks = list(
        openrouter.stream(_ask("Say hello.", max_tokens=12), ROUTER_MODEL, attempt_timeouts())
    )
    assert "".join(chunk.content for chunk in chunks) == "Hello!"
    assert [chunk.usage.output_tokens for chunk in chunks if chunk.usage] == [3]
    (sent,) = pool.sent
    assert sent.headers["HTTP-Referer"] == "https://forge.example"
    assert sent.headers["X-Title"] == "forge tests"
    assert sent.headers["authorization"] == "Bearer " + CANARY_KEYS["OPENROUTER_API_KEY"]
    # OpenRouter is not OpenAI itself: the legacy max_tokens is what every upstream honours.
    assert body_of(sent)["max_tokens"] == 12


@use_cassette("openrouter.yaml")
def test_openrouter_error_chunk_with_finish_reason_error_fails_the_stream(
    openrouter: OpenAICompatibleClient,
) -> None:
    received: list[str] = []
    with pytest.raises(ProviderUnavailable, match="Provider disconnected unexpectedly"):
        for chunk in openrouter.stream(_ask("Tell me a story."), ROUTER_MODEL, attempt_timeouts()):
            received.append(chunk.content)
    assert received == ["Once"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (402, AuthenticationFailed),
        (403, AuthenticationFailed),
        (429, RateLimited),
        (502, ProviderUnavailable),
    ],
)
@use_cassette("openrouter.yaml")
def test_openrouter_numeric_error_codes_map(
    openrouter: OpenAICompatibleClient, status: int, error: type[ProviderError]
) -> None:
    with pytest.raises(error) as caught:
        openrouter.chat(_ask(f"status {status}"), ROUTER_MODEL, attempt_timeouts())
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert str(caught.value).startswith(f"openrouter: HTTP {status}: ")
    if status == 429:
        assert isinstance(caught.value, RateLimited) and caught.value.retry_after == 5.0


@use_cassette("openrouter.yaml")
async def test_openrouter_models_metadata_feeds_capabilities(
    openrouter: OpenAICompatibleClient,
) -> None:
    before = openrouter.capabilities("openai/gpt-4o")
    models = await openrouter.alist_models()
    assert [model.id for model in models] == ["openai/gpt-4o", ROUTER_MODEL]
    gpt = openrouter.capabilities("openai/gpt-4o")
    assert (gpt.tools, gpt.tool_choice, gpt.structured_output, gpt.vision) == (True,) * 4
    assert gpt.context_window == 128000
    llama = openrouter.capabilities(ROUTER_MODEL)
    assert (llama.tools, llama.structured_output, llama.json_mode, llama.vision) == (False,) * 4
    assert llama.context_window == 131072
    assert before.context_window is None


@use_cassette("openai_errors.yaml")
def test_insufficient_quota_429_fails_over_instead_of_retrying(
    openai: OpenAICompatibleClient,
) -> None:
    with pytest.raises(AuthenticationFailed, match="exceeded your current quota") as caught:
        openai.chat(_ask("out of credit"), MODEL, attempt_timeouts())
    assert caught.value.status_code == 429
    assert caught.value.retryable is False
