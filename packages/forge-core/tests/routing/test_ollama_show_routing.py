"""Routing learns what an Ollama model can do from ``/api/show`` itself: a request that needs more
than text (images, thinking, tools, a long context) asks the server about each model it reaches
once, sync or async, and routes on the answer; a failed ``/api/show`` leaves the defaults; a
plain text request asks nothing. A loopback Ollama (`OllamaModelsServer`) answering in Ollama's
documented shapes, the cloud a `ScriptedBackend`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from forge_core import (
    ChatRequest,
    ChatResponse,
    Drop,
    Forge,
    ImagePart,
    Message,
    Provider,
    TextPart,
)
from forge_core.backends import build_backends
from forge_core.backends.http.ollama import admin
from forge_core.testing import ScriptedBackend
from forge_test_support import closed_port_url, config_for
from ollama_models_server import OllamaModelsServer, ShowFault

PIXEL = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
VISION = ["completion", "vision", "tools"]
BLIND = ["completion", "tools"]
THINKING = ["completion", "tools", "thinking"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _forge(base_url: str, *models: str) -> tuple[Forge, ScriptedBackend]:
    """Ollama at ``base_url`` trying ``models`` in order, then a scripted cloud."""
    config = config_for(
        {
            "name": "ollama",
            "base_url": base_url,
            "preferred_models": list(models),
            "health_check_timeout": 0.3,
        },
        {"name": "openai"},
    )
    cloud = ScriptedBackend("cloud answered", model="gpt-4o-mini")
    backends = {**build_backends(config), "openai": cloud}
    return Forge(config, backends=backends), cloud


def _image() -> ChatRequest:
    parts = [TextPart(text="What is this?"), PIXEL]
    return ChatRequest(messages=[Message(role="user", content=parts)])


def _text(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="Hello.")], **fields)


def _drops(answer: ChatResponse) -> list[tuple[str | None, str]]:
    return [(drop.model, drop.reason) for drop in answer.route.drops if _lacking(drop)]


def _lacking(drop: Drop) -> bool:
    return drop.reason.startswith("lacks ")


@pytest.fixture
def server() -> Iterator[OllamaModelsServer]:
    with OllamaModelsServer(
        {"llama3.2": BLIND, "llava": VISION, "qwen3": THINKING, "gemma3": VISION}
    ) as running:
        yield running


# -- images ---------------------------------------------------------------------------------------


def test_an_image_goes_to_an_ollama_vision_model_after_one_show(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "llava")
    with forge:
        answers = [forge.chat(_image()) for _ in range(3)]
    assert {(a.provider, a.model, a.content) for a in answers} == {
        (Provider.OLLAMA, "llava", "llava answered")
    }
    assert server.posts("/api/show") == [{"model": "llava"}]
    assert server.chat_models() == ["llava"] * 3
    assert cloud.calls == []


async def test_an_image_goes_to_an_ollama_vision_model_after_one_show_async(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "gemma3")
    async with forge:
        answers = [await forge.achat(_image()) for _ in range(3)]
    assert {(a.model, a.content) for a in answers} == {("gemma3", "gemma3 answered")}
    assert server.posts("/api/show") == [{"model": "gemma3"}]
    assert cloud.calls == []


def test_a_streamed_image_request_asks_once_too(server: OllamaModelsServer) -> None:
    forge, cloud = _forge(server.base_url, "llava")
    with forge:
        texts = ["".join(chunk.content or "" for chunk in forge.stream(_image())) for _ in "ab"]
    assert texts == ["llava answered"] * 2
    assert server.posts("/api/show") == [{"model": "llava"}]
    assert cloud.calls == []


def test_a_blind_ollama_model_is_skipped_for_the_next_that_sees(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "llama3.2", "llava")
    with forge:
        answer = forge.chat(_image())
    assert (answer.model, answer.content) == ("llava", "llava answered")
    assert _drops(answer) == [("llama3.2", "lacks images")]
    assert server.chat_models() == ["llava"]
    assert server.posts("/api/show") == [{"model": "llama3.2"}, {"model": "llava"}]
    assert cloud.calls == []


async def test_a_blind_ollama_model_is_skipped_for_the_cloud_async(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "llama3.2")
    async with forge:
        answer = await forge.achat(_image())
    assert answer.content == "cloud answered"
    assert _drops(answer) == [("llama3.2", "lacks images")]
    assert server.chat_models() == []
    assert len(cloud.calls) == 1


# -- thinking -------------------------------------------------------------------------------------


def test_a_reasoning_request_skips_a_model_that_cannot_think_without_the_400(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "llama3.2", "qwen3")
    with forge:
        answers = [forge.chat(_text(reasoning_effort="low")) for _ in range(2)]
    assert [a.model for a in answers] == ["qwen3", "qwen3"]
    assert all(attempt.ok for a in answers for attempt in a.route.attempts)
    assert _drops(answers[1]) == [("llama3.2", "lacks reasoning")]
    assert server.chat_models() == ["qwen3", "qwen3"]
    assert len(server.posts("/api/show")) == 2
    assert cloud.calls == []


async def test_a_reasoning_request_skips_a_model_that_cannot_think_async(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "llama3.2")
    async with forge:
        answers = [await forge.achat(_text(reasoning_effort="low")) for _ in range(2)]
    assert [a.content for a in answers] == ["cloud answered"] * 2
    assert len(cloud.calls) == 2
    assert server.chat_models() == []
    assert server.posts("/api/show") == [{"model": "llama3.2"}]


# -- what asks and what does not --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["chat", "stream", "achat"])
async def test_a_plain_text_request_asks_nothing(server: OllamaModelsServer, path: str) -> None:
    forge, _ = _forge(server.base_url, "llama3.2")
    with forge:
        if path == "chat":
            forge.chat(_text())
        elif path == "stream":
            list(forge.stream(_text()))
        else:
            await forge.achat(_text())
    assert server.posts("/api/show") == []
    assert server.chat_models() == ["llama3.2"]


def test_a_tool_request_asks_and_keeps_a_model_that_calls_tools(
    server: OllamaModelsServer,
) -> None:
    forge, cloud = _forge(server.base_url, "llama3.2")
    with forge:
        answer = forge.chat(_text(tools=[WEATHER]))
    assert answer.model == "llama3.2"
    assert server.posts("/api/show") == [{"model": "llama3.2"}]
    assert cloud.calls == []


def test_a_prompt_longer_than_the_models_context_goes_elsewhere() -> None:
    with OllamaModelsServer({"tiny": BLIND}, context_length=2048) as server:
        forge, cloud = _forge(server.base_url, "tiny")
        with forge:
            answer = forge.chat(
                ChatRequest(messages=[Message(role="user", content="word " * 2000)])
            )
    assert answer.content == "cloud answered"
    assert _drops(answer) == [("tiny", "lacks a 2500-token context (has 2048)")]
    assert server.posts("/api/show") == [{"model": "tiny"}]
    assert len(cloud.calls) == 1 and server.chat_models() == []


def test_an_answer_without_capabilities_keeps_the_defaults() -> None:
    with OllamaModelsServer({"old": None}) as server:
        forge, cloud = _forge(server.base_url, "old")
        with forge:
            assert forge.chat(_text(tools=[WEATHER])).model == "old"
            assert forge.chat(_image()).content == "cloud answered"
    assert server.posts("/api/show") == [{"model": "old"}]
    assert len(cloud.calls) == 1


# -- a failed /api/show ------------------------------------------------------------------------------

FAULTS: list[ShowFault] = ["not_found", "malformed", "wrong_shape", "hang"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_show_leaves_the_defaults_and_is_not_asked_again(fault: ShowFault) -> None:
    with OllamaModelsServer({"llama3.2": BLIND}, show=fault) as server:
        forge, cloud = _forge(server.base_url, "llama3.2")
        with forge:
            answers = [forge.chat(_text(tools=[WEATHER])) for _ in range(2)]
            image = forge.chat(_image())
    assert [a.model for a in answers] == ["llama3.2", "llama3.2"]
    assert image.content == "cloud answered" and len(cloud.calls) == 1
    assert server.posts("/api/show") == [{"model": "llama3.2"}]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failed_show_leaves_the_defaults_async(fault: ShowFault) -> None:
    with OllamaModelsServer({"llama3.2": BLIND}, show=fault) as server:
        forge, cloud = _forge(server.base_url, "llama3.2")
        async with forge:
            answers = [await forge.achat(_text(tools=[WEATHER])) for _ in range(2)]
    assert [a.model for a in answers] == ["llama3.2", "llama3.2"]
    assert server.posts("/api/show") == [{"model": "llama3.2"}]
    assert cloud.calls == []


@pytest.mark.parametrize("path", ["chat", "achat"])
async def test_a_refused_show_fails_no_request(path: str) -> None:
    forge, cloud = _forge(closed_port_url(), "llava")
    with forge:
        answer = forge.chat(_image()) if path == "chat" else await forge.achat(_image())
    assert answer.content == "cloud answered" and len(cloud.calls) == 1


def test_a_failed_show_is_asked_again_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin, "SHOW_RETRY_SECONDS", 0.0)
    with OllamaModelsServer({"llama3.2": BLIND}, show="not_found") as server:
        forge, _ = _forge(server.base_url, "llama3.2")
        with forge:
            forge.chat(_text(tools=[WEATHER]))
            server.show = "ok"
            forge.chat(_text(tools=[WEATHER]))
            forge.chat(_text(tools=[WEATHER]))
    assert server.posts("/api/show") == [{"model": "llama3.2"}] * 2


@pytest.mark.parametrize("path", ["chat", "achat"])
async def test_each_balanced_host_is_asked_at_most_once(path: str) -> None:
    with (
        OllamaModelsServer({"llava": VISION}) as a,
        OllamaModelsServer({"llava": VISION}) as b,
    ):
        hosts = [
            {"name": "host-a", "base_url": a.base_url},
            {"name": "host-b", "base_url": b.base_url},
        ]
        config = config_for(
            {"name": "ollama", "hosts": hosts, "preferred_models": ["llava"]}, {"name": "openai"}
        )
        cloud = ScriptedBackend("cloud answered")
        with Forge(config, backends={**build_backends(config), "openai": cloud}) as forge:
            for _ in range(4):
                answer = forge.chat(_image()) if path == "chat" else await forge.achat(_image())
                assert answer.content == "llava answered"
    assert len(a.chat_models()) + len(b.chat_models()) == 4
    assert len(a.posts("/api/show")) <= 1 and len(b.posts("/api/show")) <= 1
    assert cloud.calls == []
