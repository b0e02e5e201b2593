"""LlamaIndex's instrumentation dispatcher carries forge's route: a `ForgeRouteEvent` per call.

An event handler on the root dispatcher (where Arize Phoenix, Langfuse and the other LlamaIndex
integrations listen) watches `ForgeLLM` fall back from an ``openai`` deployment that is down to an
``openrouter`` one that answers, both scripted (`forge_core.testing.ScriptedBackend`: what is
tested is what the wrapper dispatches, not HTTP), and `ForgeEmbedding` embed on a fault server on
127.0.0.1 (its answer reports the input tokens, which a scripted embedding does not).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fault_server import FaultServer
from forge_core import ChatResponse, ForgeConfig, Provider, ProviderUnavailable, RouteTrail, Usage
from forge_core.testing import ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llamaindex_forge import ForgeEmbedding, ForgeLLM
from llamaindex_forge.base import ForgeRouteEvent

FELL_BACK = [("openai", "unavailable"), ("openrouter", None)]


class Events(BaseEventHandler):
    """Keeps every event the dispatcher hands it."""

    events: list[BaseEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "Events"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type[BaseEvent]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@pytest.fixture
def events() -> Iterator[Events]:
    handler = Events(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler
    finally:
        root.event_handlers.remove(handler)


#: The model the answering deployment says served (the request asks for ``m``).
MODEL = "served-model"


def _answer(text: str) -> ChatResponse:
    """What the ``openrouter`` deployment answers: ``text`` from `MODEL`, with its usage."""
    return ChatResponse(
        content=text,
        finish_reason="stop",
        usage=Usage(input_tokens=3, output_tokens=4),
        provider=Provider.OPENROUTER,
        model=MODEL,
        route=RouteTrail(),
    )


def _fallback_config() -> ForgeConfig:
    """``openai`` then ``openrouter``, nothing else."""
    return config_for({"name": "openai"}, {"name": "openrouter"})


def _fallback_llm(text: str) -> ForgeLLM:
    """A `ForgeLLM` whose ``openai`` is down and whose ``openrouter`` answers ``text``."""
    down = ScriptedBackend(ProviderUnavailable("connection refused"), provider="openai")
    up = ScriptedBackend(_answer(text), provider="openrouter", model="m")
    return ForgeLLM(config=_fallback_config(), backends={"openai": down, "openrouter": up})


def _attempts(route: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["provider"], None if a["ok"] else a["error_kind"]) for a in route["attempts"]]


def test_chat_dispatches_the_route_beside_llamaindex_own_events(events: Events) -> None:
    _fallback_llm("hi").chat([ChatMessage(role="user", content="hi")])
    (event,) = events.of(ForgeRouteEvent)
    assert event.class_name() == "ForgeRouteEvent"
    assert (event.operation, event.provider, event.model) == ("chat", "openrouter", MODEL)
    assert _attempts(event.route) == FELL_BACK
    assert event.usage == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert event.cost_usd is None  # model "m" has no price
    (end,) = events.of(LLMChatEndEvent)
    assert end.response is not None and end.response.raw["route"] == event.route
    assert event.model_dump()["class_name"] == "ForgeRouteEvent"


def test_a_stream_dispatches_the_route_once_with_its_last_chunk(events: Events) -> None:
    responses = list(_fallback_llm("hi").stream_chat([ChatMessage(role="user", content="hi")]))
    assert [response.delta for response in responses if response.delta] == ["h", "i"]
    assert responses[-1].message.content == "hi"
    (event,) = events.of(ForgeRouteEvent)
    assert _attempts(event.route) == FELL_BACK


async def test_async_chat_dispatches_it_too(events: Events) -> None:
    await _fallback_llm("hi").achat([ChatMessage(role="user", content="hi")])
    (event,) = events.of(ForgeRouteEvent)
    assert event.route["provider"] == "openrouter"


def test_embeddings_dispatch_the_route_with_usage(events: Events) -> None:
    with FaultServer() as server:
        config = config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
        embedding = ForgeEmbedding(config=config)
        vectors = embedding.get_text_embedding_batch(["one", "two"])
    assert len(vectors) == 2
    (event,) = events.of(ForgeRouteEvent)
    assert event.operation == "embeddings"
    assert event.provider == "openai"
    assert event.usage == {"input_tokens": 2}
    assert event.route["attempts"][-1]["ok"] is True
    assert embedding.route is not None and event.route == embedding.route.model_dump(mode="json")
