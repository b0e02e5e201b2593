"""The route reaches LangChain's callback handlers: what ``on_llm_end`` gets, and a tracer's run.

A real `BaseCallbackHandler` and LangChain's `RunCollectorCallbackHandler` (a tracer, as
LangSmith's is) watch `ForgeChat` fall back from a refused port to a fault server on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from fault_server import FaultServer, ok
from forge_core import ForgeConfig
from forge_test_support import closed_port_url, config_for
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


def _fallback_config(server: FaultServer) -> ForgeConfig:
    return config_for(
        {"name": "openai", "base_url": closed_port_url() + "/v1", "default_model": "m"},
        {"name": "openrouter", "base_url": server.base_url, "default_model": "m"},
    )


def _attempts(route: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["provider"], None if a["ok"] else a["error_kind"]) for a in route["attempts"]]


FELL_BACK = [("openai", "unavailable"), ("openrouter", None)]


def test_on_llm_end_gets_the_route_in_generation_info_and_llm_output() -> None:
    watcher = RouteWatcher()
    with FaultServer([ok("hi")]) as server:
        ForgeChat(config=_fallback_config(server)).invoke("hello", config={"callbacks": [watcher]})
    (result,) = watcher.results
    (generation,) = result.generations[0]
    info = generation.generation_info or {}
    assert info["model_provider"] == "openrouter"
    assert _attempts(info["route"]) == FELL_BACK
    assert "cost_usd" in info
    output = result.llm_output or {}
    assert output["model_name"] == info["model_name"]
    assert output["token_usage"] == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert _attempts(output["route"]) == FELL_BACK


def test_a_streamed_answer_hands_the_route_to_on_llm_end() -> None:
    watcher = RouteWatcher()
    with FaultServer([ok("hi", "h", "i")]) as server:
        chunks = list(
            ForgeChat(config=_fallback_config(server)).stream(
                "hello", config={"callbacks": [watcher]}
            )
        )
    assert "".join(str(chunk.content) for chunk in chunks) == "hi"
    (result,) = watcher.results
    (generation,) = result.generations[0]
    assert _attempts((generation.generation_info or {})["route"]) == FELL_BACK
    assert _attempts(generation.message.response_metadata["route"]) == FELL_BACK  # type: ignore[attr-defined]


async def test_ainvoke_and_astream_do_the_same() -> None:
    watcher = RouteWatcher()
    with FaultServer([ok("hi"), ok("hi")]) as server:
        chat = ForgeChat(config=_fallback_config(server))
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
    with FaultServer([ok("hi")]) as server:
        ForgeChat(config=_fallback_config(server)).invoke("hello", config={"callbacks": [tracer]})
    (run,) = tracer.traced_runs
    assert run.run_type == "llm"
    outputs = run.outputs or {}
    assert _attempts(outputs["llm_output"]["route"]) == FELL_BACK
    generation = outputs["generations"][0][0]
    assert _attempts(generation["generation_info"]["route"]) == FELL_BACK
    assert generation["generation_info"]["model_provider"] == "openrouter"


def test_a_batch_combines_the_routes_and_usage() -> None:
    with FaultServer([ok("a"), ok("b")]) as server:
        chat = ForgeChat(config=_fallback_config(server))
        result = chat.generate([[HumanMessage("hello")], [HumanMessage("again")]])
    output = result.llm_output or {}
    assert [route["provider"] for route in output["routes"]] == ["openrouter", "openrouter"]
    assert output["token_usage"] == {"input_tokens": 6, "output_tokens": 8, "total_tokens": 14}
    assert output["cost_usd"] is None  # model "m" has no price


@pytest.mark.parametrize("method", ["invoke", "stream"])
def test_response_metadata_has_the_cost(method: str) -> None:
    with FaultServer([ok("hi")]) as server:
        config = config_for(
            {"name": "openai", "base_url": server.base_url, "default_model": "m"},
            pricing={"models": {"m": {"input": 1.0, "output": 1.0}}},
        )
        chat = ForgeChat(config=config)
        if method == "invoke":
            message: Any = chat.invoke("hello")
        else:
            message = None
            for chunk in chat.stream("hello"):
                message = chunk if message is None else message + chunk
    usage = message.usage_metadata
    assert message.response_metadata["route"]["cost_usd"] == pytest.approx(
        usage["total_tokens"] / 1e6
    )
