"""Cache and reasoning token counts reach `ForgeLLM` answers, as docs/observability.md says:
``raw["usage"]`` and the `ForgeRouteEvent`'s ``usage``, in ``chat``, ``stream_chat``, ``achat``
and ``astream_chat``; a stream reports them once, on its last response (LlamaIndex has no
standard suite; this is what LangChain's ``supported_usage_metadata_details`` checks prove for
``ForgeChat`` in ``test_standard_usage_details.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from forge_core import Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llamaindex_forge import ForgeLLM
from llamaindex_forge.base import ForgeRouteEvent

USER = [ChatMessage(role=MessageRole.USER, content="hi")]
#: What a provider with a prompt cache and a reasoning model reports (Anthropic reads and
#: writes its cache; OpenAI reads and reasons).
DETAILED = Usage(
    input_tokens=1200,
    output_tokens=300,
    cached_input_tokens=1000,
    cache_creation_input_tokens=150,
    reasoning_tokens=200,
)
EXPECTED = {
    "input_tokens": 1200,
    "output_tokens": 300,
    "total_tokens": 1500,
    "cached_input_tokens": 1000,
    "cache_creation_input_tokens": 150,
    "reasoning_tokens": 200,
}


class _RouteEvents(BaseEventHandler):
    """Keeps every `ForgeRouteEvent` the root dispatcher hands it."""

    seen: list[ForgeRouteEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "RouteEvents"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, ForgeRouteEvent):
            self.seen.append(event)


@pytest.fixture
def route_events() -> Iterator[_RouteEvents]:
    handler = _RouteEvents(seen=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler
    finally:
        root.event_handlers.remove(handler)


def _llm() -> ForgeLLM:
    backend = ScriptedBackend(Reply("Hello there, friend!", usage=DETAILED, chunks=3))
    return ForgeLLM(config=config_for({"name": "openai"}), backends={"openai": backend})


async def _answers(path: str) -> list[ChatResponse]:
    """Every response ``path`` gives for one request (a stream's, in order)."""
    llm = _llm()
    if path == "chat":
        return [llm.chat(USER)]
    if path == "stream_chat":
        return list(llm.stream_chat(USER))
    if path == "achat":
        return [await llm.achat(USER)]
    return [response async for response in await llm.astream_chat(USER)]


@pytest.mark.parametrize("path", ["chat", "stream_chat", "achat", "astream_chat"])
async def test_raw_usage_and_the_route_event_have_every_detail_once(
    path: str, route_events: _RouteEvents
) -> None:
    answers = await _answers(path)
    assert len(answers) == (4 if "stream" in path else 1)  # three pieces, then the last
    assert answers[-1].message.content == "Hello there, friend!"
    usages = [answer.raw.get("usage") for answer in answers if answer.raw is not None]
    # A stream's earlier responses carry none: summing them cannot count the tokens twice.
    assert [usage for usage in usages if usage] == [EXPECTED]
    assert answers[-1].raw is not None
    assert answers[-1].raw["usage"] == EXPECTED
    (event,) = route_events.seen
    assert event.usage == EXPECTED
