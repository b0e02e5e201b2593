"""ForgeChat as the model of a LangGraph agent, on llama-cpp-python's tool-calling server.

Both agent factories are run: `langchain.agents.create_agent` (LangChain 1.x) and
`langgraph.prebuilt.create_react_agent` (its older name, deprecated in LangGraph 1.0 but in
wide use). Each gives the model its tools through ``ForgeChat.bind_tools``.

The server is the ``tool_server`` fixture (``chatml-function-calling``: grammar-constrained
calls) running the 270M base model, which does not decide on its own to call a tool. So the
first step is forced with ``tool_choice`` (as cookbook/langgraph_agent.py does) and the step
after a tool result gets no tools. The tests check what the agent does with the model's
answers: the tool runs with the model's arguments, its result goes back to the model in the
next step, the loop ends; and all of it when the first provider forge tries is dead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

import pytest
from forge_core import ForgeConfig
from forge_test_support import LocalServer, closed_port_url, config_for, openai_compatible_on
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langchain_forge import ForgeChat
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import create_react_agent

pytestmark = pytest.mark.local_server

QUESTION = "What is the weather in Paris?"
#: Room for the grammar-constrained call's JSON from the tiny model.
MAX_TOKENS = 48

weather_calls: list[str] = []


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    weather_calls.append(city)
    return f"It is 18 degrees and sunny in {city}."


def _has_tool_result(messages: Sequence[BaseMessage]) -> bool:
    return any(isinstance(message, ToolMessage) for message in messages)


class ToolFirstThenAnswer(AgentMiddleware):
    """`create_agent` middleware: force get_weather first; after its result, no tools."""

    def _step(self, request: ModelRequest) -> ModelRequest:
        if _has_tool_result(request.messages):
            return request.override(tools=[])
        return request.override(tool_choice="get_weather")

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelResponse:
        return handler(self._step(request))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        return await handler(self._step(request))


def _agent_from_create_agent(llm: ForgeChat) -> CompiledStateGraph[Any]:
    return create_agent(llm, tools=[get_weather], middleware=[ToolFirstThenAnswer()])


def _agent_from_create_react_agent(llm: ForgeChat) -> CompiledStateGraph[Any]:
    def step_model(state: dict[str, Any], runtime: Any) -> Runnable[Any, BaseMessage]:
        # A dynamic model: the same forcing as the middleware, chosen per step.
        if _has_tool_result(state["messages"]):
            return llm
        return llm.bind_tools([get_weather], tool_choice="get_weather")

    with pytest.warns(DeprecationWarning, match="create_agent"):
        return create_react_agent(step_model, tools=[get_weather])


FACTORIES = pytest.mark.parametrize(
    "make_agent",
    [_agent_from_create_agent, _agent_from_create_react_agent],
    ids=["create_agent", "create_react_agent"],
)


class ModelInputs(BaseCallbackHandler):
    """Records the messages each model call of the agent is given."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        self.calls.extend(messages)


@pytest.fixture(autouse=True)
def _fresh_tool_log() -> None:
    weather_calls.clear()


def _chat(config: ForgeConfig) -> ForgeChat:
    return ForgeChat(config=config, max_tokens=MAX_TOKENS, temperature=0.0)


def _attempts(message: AIMessage) -> list[tuple[str, bool]]:
    route = message.response_metadata["route"]
    return [(attempt["provider"], attempt["ok"]) for attempt in route["attempts"]]


def _check_the_tool_loop(messages: list[BaseMessage], inputs: ModelInputs) -> AIMessage:
    """One tool call, run with the model's arguments; its result fed back; a final answer."""
    human, request, result, answer = messages
    assert isinstance(human, HumanMessage)
    assert isinstance(request, AIMessage)
    [call] = request.tool_calls
    assert call["name"] == "get_weather"
    assert call["id"]
    assert weather_calls == [call["args"]["city"]], "the tool ran with the model's arguments"

    assert isinstance(result, ToolMessage)
    assert result.tool_call_id == call["id"]
    assert result.content == f"It is 18 degrees and sunny in {call['args']['city']}."

    # The model's second call was given the tool's result, paired with its call.
    assert len(inputs.calls) == 2
    fed_back = [m for m in inputs.calls[1] if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.content) for m in fed_back] == [(call["id"], result.content)]

    assert isinstance(answer, AIMessage)
    assert answer.tool_calls == []
    return answer


@FACTORIES
def test_the_agent_calls_the_tool_and_answers_from_its_result(
    tool_server: LocalServer, make_agent: Callable[[ForgeChat], CompiledStateGraph[Any]]
) -> None:
    agent = make_agent(_chat(config_for(openai_compatible_on(tool_server))))
    inputs = ModelInputs()
    state = agent.invoke({"messages": [("user", QUESTION)]}, {"callbacks": [inputs]})
    answer = _check_the_tool_loop(state["messages"], inputs)
    assert answer.response_metadata["provider"] == "openai"


@FACTORIES
def test_the_agent_keeps_working_when_the_primary_provider_is_dead(
    tool_server: LocalServer, make_agent: Callable[[ForgeChat], CompiledStateGraph[Any]]
) -> None:
    dead_first = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(tool_server)
    )
    agent = make_agent(_chat(dead_first))
    inputs = ModelInputs()
    state = agent.invoke({"messages": [("user", QUESTION)]}, {"callbacks": [inputs]})
    answer = _check_the_tool_loop(state["messages"], inputs)

    request = state["messages"][1]
    assert _attempts(request) == [("ollama", False), ("openai", True)]
    # Every model step was answered by the live provider, whatever forge did with the dead one.
    for message in (request, answer):
        assert message.response_metadata["provider"] == "openai"
        assert _attempts(message)[-1] == ("openai", True)


async def test_the_agent_runs_async_with_a_dead_primary(tool_server: LocalServer) -> None:
    dead_first = config_for(
        {"name": "ollama", "base_url": closed_port_url()}, openai_compatible_on(tool_server)
    )
    agent = _agent_from_create_agent(_chat(dead_first))
    inputs = ModelInputs()
    state = await agent.ainvoke({"messages": [("user", QUESTION)]}, {"callbacks": [inputs]})
    answer = _check_the_tool_loop(state["messages"], inputs)
    assert _attempts(state["messages"][1]) == [("ollama", False), ("openai", True)]
    assert answer.response_metadata["provider"] == "openai"
