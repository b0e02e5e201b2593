"""Ollama's native API through `OllamaClient` and its `OllamaAdmin`: cassettes of the documented
formats (docs/providers.md), real sockets for faults."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from forge_cassettes import RecordingPool, body_of, use_cassette
from forge_core import (
    ChatRequest,
    Message,
    ModelNotFound,
    OllamaUnavailable,
    Provider,
    ProviderUnavailable,
)
from forge_core.backends import (
    ModelCatalog,
    OllamaClient,
    OllamaModel,
    PullProgress,
    build_backends,
)
from forge_provider_support import weather_tool
from forge_test_support import attempt_timeouts, closed_port_url, config_for

BASE_URL = "http://localhost:11434"
WEATHER_TOOL = weather_tool("city")


@pytest.fixture
def ollama(pool: RecordingPool) -> OllamaClient:
    return OllamaClient(
        BASE_URL, default_model="llama3.2", num_ctx=8192, keep_alive="10m", pool=pool
    )


@use_cassette("ollama_native.yaml")
def test_list_models_returns_the_pulled_models(ollama: OllamaClient) -> None:
    assert isinstance(ollama, ModelCatalog)
    models = ollama.list_models()
    assert all(isinstance(model, OllamaModel) for model in models)
    first = models[0]
    assert isinstance(first, OllamaModel)
    assert (first.name, first.size, first.digest[:8]) == ("llama3.2:latest", 2019393189, "a80c4f17")
    assert first.modified_at == "2025-05-04T17:37:44.706015396-07:00"
    assert (first.details.family, first.details.parameter_size) == ("llama", "3.2B")
    assert first.details.quantization_level == "Q4_K_M"
    assert [model.id for model in models] == ["llama3.2:latest", "llava:7b"]


@use_cassette("ollama_native.yaml")
async def test_async_list_models_and_health(ollama: OllamaClient) -> None:
    models = await ollama.alist_models()
    assert [model.id for model in models] == ["llama3.2:latest", "llava:7b"]
    assert await ollama.admin.ahealth_check() is True


@use_cassette("ollama_native.yaml")
def test_health_check_reads_the_version(ollama: OllamaClient) -> None:
    assert ollama.admin.version() == "0.5.1"
    assert ollama.admin.health_check() is True


@use_cassette("ollama_native.yaml")
def test_show_gives_context_length_and_capabilities_that_feed_capabilities(
    ollama: OllamaClient,
) -> None:
    assert ollama.capabilities("llama3.2").context_window is None
    info = ollama.admin.show("llama3.2")
    assert info.context_length == 131072
    assert info.capabilities == ["completion", "tools"]
    capabilities = ollama.capabilities("llama3.2")
    assert capabilities.tools and not capabilities.vision
    assert capabilities.context_window == 131072


@use_cassette("ollama_native.yaml")
def test_unknown_model_is_model_not_found(ollama: OllamaClient) -> None:
    with pytest.raises(ModelNotFound, match="llama9"):
        ollama.admin.show("llama9")
    with pytest.raises(ModelNotFound, match="try pulling it first") as caught:
        ollama.chat(
            ChatRequest(messages=[Message(role="user", content="Say hello.")]),
            "llama9",
            attempt_timeouts(),
        )
    assert caught.value.status_code == 404


@use_cassette("ollama_native.yaml")
def test_running_models_from_ps(ollama: OllamaClient) -> None:
    (running,) = ollama.admin.running_models()
    assert (running.name, running.size_vram, running.context_length) == (
        "llama3.2:latest",
        5137025024,
        4096,
    )


@use_cassette("ollama_native.yaml")
def test_preload_is_an_empty_generate_with_keep_alive(
    ollama: OllamaClient, pool: RecordingPool
) -> None:
    ollama.admin.preload("llama3.2")
    assert body_of(pool.sent[-1]) == {"model": "llama3.2", "keep_alive": "10m"}


@use_cassette("ollama_native.yaml")
def test_native_chat_sends_options_and_reads_usage(ollama: OllamaClient) -> None:
    request = ChatRequest(
        messages=[
            Message(role="system", content="be brief"),
            Message(role="user", content="Say hello."),
        ],
        temperature=0,
        max_tokens=12,
    )
    answer = ollama.chat(request, "llama3.2", attempt_timeouts())
    assert answer.content == "Hello!"
    assert answer.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (26, 3)


@use_cassette("ollama_native.yaml")
async def test_native_ndjson_stream(ollama: OllamaClient) -> None:
    request = ChatRequest(messages=[Message(role="user", content="Say hello.")], max_tokens=12)
    chunks = [chunk async for chunk in ollama.astream(request, "llama3.2", attempt_timeouts())]
    assert [chunk.content for chunk in chunks] == ["Hel", "lo!", ""]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 3


@use_cassette("ollama_native.yaml")
def test_native_streamed_tool_calls_get_real_ids_and_stay_two(ollama: OllamaClient) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="weather in Tokyo, twice?")], tools=[WEATHER_TOOL]
    )
    chunks = list(ollama.stream(request, "llama3.2", attempt_timeouts()))
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert [delta.index for delta in deltas] == [0, 1]
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert [(call.name, call.arguments) for call in final.tool_calls] == [
        ("get_weather", {"city": "Tokyo"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    ids = [call.id for call in final.tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith("call_") and i != "get_weather" for i in ids)
    assert [delta.id for delta in deltas] == ids


@use_cassette("ollama_native.yaml")
def test_error_line_mid_stream_raises_after_the_text(ollama: OllamaClient) -> None:
    request = ChatRequest(messages=[Message(role="user", content="Tell me a story.")])
    received: list[str] = []
    with pytest.raises(ProviderUnavailable, match="unexpected EOF"):
        for chunk in ollama.stream(request, "llama3.2", attempt_timeouts()):
            received.append(chunk.content)
    assert received == ["Once"]


@use_cassette("ollama_native.yaml")
def test_pull_streams_progress_to_the_callback(ollama: OllamaClient) -> None:
    lines: list[PullProgress] = []
    ollama.admin.pull("llama3.2", lines.append)
    assert lines[0].status == "pulling manifest"
    assert lines[-1].status == "success"
    layer = [line for line in lines if line.total]
    assert [(line.completed, line.total) for line in layer] == [
        (241970, 2019377376),
        (2019377376, 2019377376),
    ]


@use_cassette("ollama_native.yaml")
def test_pull_of_an_unknown_model_fails_with_model_not_found(ollama: OllamaClient) -> None:
    lines: list[PullProgress] = []
    with pytest.raises(ModelNotFound, match="file does not exist"):
        ollama.admin.pull("llama9", lines.append)
    assert [line.status for line in lines] == ["pulling manifest"]


def test_refused_connection_is_ollama_unavailable() -> None:
    ollama = OllamaClient(closed_port_url(), default_model="llama3.2")
    assert ollama.admin.health_check() is False
    with pytest.raises(OllamaUnavailable, match="connection refused"):
        ollama.list_models()
    with pytest.raises(OllamaUnavailable):
        ollama.chat(
            ChatRequest(messages=[Message(role="user", content="hi")]),
            "llama3.2",
            attempt_timeouts(),
        )


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_health_check_has_its_own_short_timeout(silent_server: str) -> None:
    ollama = OllamaClient(
        silent_server, default_model="llama3.2", timeout_seconds=60, health_check_timeout=0.2
    )
    assert ollama.admin.health_check() is False


def test_build_backends_gives_ollama_the_native_options() -> None:
    config = config_for(
        {"name": "ollama", "api": "native", "num_ctx": 4096, "keep_alive": -1, "think": True}
    )
    ollama = build_backends(config)[Provider.OLLAMA]
    assert isinstance(ollama, OllamaClient)
    body = ollama.native_body(
        ChatRequest(messages=[Message(role="user", content="hi")]), "qwen3", stream=True
    )
    assert body["options"] == {"num_ctx": 4096}
    assert (body["keep_alive"], body["think"], body["stream"]) == (-1, True, True)
