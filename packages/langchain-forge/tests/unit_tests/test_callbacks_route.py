"""The route reaches LangChain's callback handlers: what ``on_llm_end`` gets, and a tracer's run.

A real `BaseCallbackHandler` and LangChain's `RunCollectorCallbackHandler` (a tracer, as
LangSmith's is) watch `ForgeChat` fall back from an ``openai`` deployment that is down to an
``openrouter`` one that answers, both scripted (`forge_core.testing.ScriptedBackend`): what is
tested is what the wrapper hands LangChain, not HTTP.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from forge_core import ForgeConfig, ProviderUnavailable, Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_forge import ForgeChat


class RouteWatcher(BaseCallbackHandler):
    """Keeps every `LLMResult` LangChain hands to ``on_llm_end``."""

    def __init__(self) -> None:
        self.results: list[LLMResult] = []

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self.results.append(response)


#: Tokens each scripted answer reports.
USAGE = Usage(input_tokens=3, output_tokens=4)


def _fallback_config() -> ForgeConfig:
    """``openai`` then ``openrouter``, nothing else."""
    return config_for({"name": "openai"}, {"name": "openrouter"})


def _fallback_chat(*answers: str | Reply) -> ForgeChat:
    """A `ForgeChat` whose ``openai`` is down and whose ``openrouter`` (model ``m``) plays
    ``answers``."""
    down = ScriptedBackend(ProviderUnavailable("connection refused"), provider="openai")
    up = ScriptedBackend(*answers, provider="openrouter", model="m")
    return ForgeChat(config=_fallback_config(), backends={"openai": down, "openrouter": up})


def _attempts(route: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["provider"], None if a["ok"] else a["error_kind"]) for a in route["attempts"]]


FELL_BACK = [("openai", "unavailable"), ("openrouter", None)]


def test_on_llm_end_gets_the_route_in_generation_info_and_llm_output() -> None:
    watcher = RouteWatcher()
    _fallback_chat(Reply("hi", usage=USAGE)).invoke("hello", config={"callbacks": [watcher]})
    (result,) = watcher.results
    (generation,) = result.generations[0]
    info = generation.generation_info or {}
    assert info["provider"] == "openrouter"
    assert _attempts(info["route"]) == FELL_BACK
    assert "cost_usd" in info
    output = result.llm_output or {}
    assert output["model_name"] == info["model_name"]
    assert output["token_usage"] == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert _attempts(output["route"]) == FELL_BACK


def test_a_streamed_answer_hands_the_route_to_on_llm_end() -> None:
    watcher = RouteWatcher()
    chat = _fallback_chat(Reply("hi", chunks=2))
    chunks = list(chat.stream("hello", config={"callbacks": [watcher]}))
    assert [chunk.content for chunk in chunks if chunk.content] == ["h", "i"]
    (result,) = watcher.results
    (generation,) = result.generations[0]
    assert _attempts((generation.generation_info or {})["route"]) == FELL_BACK
    assert _attempts(generation.message.response_metadata["route"]) == FELL_BACK  # type: ignore[attr-defined]


async def test_ainvoke_and_astream_do_the_same() -> None:
    watcher = RouteWatcher()
    chat = _fallback_chat("hi")
    await chat.ainvoke("hello", config={"callbacks": [watcher]})
    async for _ in chat.astream("hello", config={"callbacks": [watcher]}):
        pass
    assert len(watcher.results) == 2
    for result in watcher.results:
        info = result.generations[0][0].generation_info or {}
        # The first call opened nothing (threshold 3): both fall back the same way.
        assert info["route"]["provider"] == "openrouter"


def test_a_tracer_run_records_the_route_in_its_outputs() -> None:
    tracer = RunCollectorCallbackHandler()
    _fallback_chat("hi").invoke("hello", config={"callbacks": [tracer]})
    (run,) = tracer.traced_runs
    assert run.run_type == "llm"
    outputs = run.outputs or {}
    assert _attempts(outputs["llm_output"]["route"]) == FELL_BACK
    generation = outputs["generations"][0][0]
    assert _attempts(generation["generation_info"]["route"]) == FELL_BACK
    assert generation["generation_info"]["provider"] == "openrouter"


def test_a_batch_combines_the_routes_and_usage() -> None:
    chat = _fallback_chat(Reply("a", usage=USAGE), Reply("b", usage=USAGE))
    result = chat.generate([[HumanMessage("hello")], [HumanMessage("again")]])
    assert [generation[0].text for generation in result.generations] == ["a", "b"]
    output = result.llm_output or {}
    assert [route["provider"] for route in output["routes"]] == ["openrouter", "openrouter"]
    assert output["token_usage"] == {"input_tokens": 6, "output_tokens": 8, "total_tokens": 14}
    assert output["cost_usd"] is None  # model "m" has no price


@pytest.mark.parametrize("method", ["invoke", "stream"])
def test_response_metadata_has_the_cost(method: str) -> None:
    config = config_for(
        {"name": "openai"}, pricing={"models": {"m": {"input": 1.0, "output": 1.0}}}
    )
    backend = ScriptedBackend(Reply("hi", usage=USAGE), model="m")
    chat = ForgeChat(config=config, backends={"openai": backend})
    if method == "invoke":
        message: Any = chat.invoke("hello")
    else:
        message = None
        for chunk in chat.stream("hello"):
            message = chunk if message is None else message + chunk
    usage = message.usage_metadata
    assert usage["total_tokens"] == USAGE.total_tokens
    assert message.response_metadata["route"]["cost_usd"] == pytest.approx(
        usage["total_tokens"] / 1e6
    )
