"""ForgeLLM as a FunctionCallingLLM against a real server with grammar-constrained tool calls.

`tool_server` is llama-cpp-python's server with ``chatml-function-calling``: a forced tool
(``tool_choice`` naming it) always yields a well-formed call, so these tests can assert on the
call itself even though the 270M model's prose is not reliable.
"""

from __future__ import annotations

import json

import pytest
from forge_test_support import LocalServer, config_for, ollama_on
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeLLM

pytestmark = pytest.mark.local_server

MAX_TOKENS = 24


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is sunny in {city}."


WEATHER = FunctionTool.from_defaults(fn=get_weather)
QUESTION = "What is the weather in Paris?"


@pytest.fixture
def tool_llm(tool_server: LocalServer) -> ForgeLLM:
    return ForgeLLM(config=config_for(ollama_on(tool_server)), max_tokens=MAX_TOKENS)


def test_route_with_a_tool_capable_provider_is_function_calling(tool_llm: ForgeLLM) -> None:
    assert tool_llm.metadata.is_function_calling_model is True


def test_forced_tool_call_has_a_real_id_and_parsed_arguments(tool_llm: ForgeLLM) -> None:
    response = tool_llm.chat_with_tools([WEATHER], user_msg=QUESTION, tool_choice="get_weather")
    [selection] = tool_llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "get_weather"
    assert isinstance(selection.tool_kwargs["city"], str)
    wire = response.message.additional_kwargs["tool_calls"]
    assert selection.tool_id == wire[0]["id"]
    # The id is the server's, not one forge made up from the position.
    assert selection.tool_id != "call_0"
    assert response.raw is not None
    assert response.raw["finish_reason"] == "tool_calls"
    assert response.raw["route"]["provider"] == "ollama"


async def test_async_forced_tool_call(tool_llm: ForgeLLM) -> None:
    response = await tool_llm.achat_with_tools(
        [WEATHER], user_msg=QUESTION, tool_choice="get_weather"
    )
    [selection] = tool_llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "get_weather"


def test_streamed_tool_call_is_assembled_on_the_last_response(tool_llm: ForgeLLM) -> None:
    responses = list(
        tool_llm.stream_chat_with_tools([WEATHER], user_msg=QUESTION, tool_choice="get_weather")
    )
    assert len(responses) > 2, "the call was not streamed in pieces"
    last = responses[-1]
    [selection] = tool_llm.get_tool_calls_from_response(last)
    assert selection.tool_name == "get_weather"
    assert isinstance(selection.tool_kwargs["city"], str)
    # Every piece names the same single call (same id), never one call per fragment.
    for piece in responses[:-1]:
        calls = piece.message.additional_kwargs.get("tool_calls") or []
        assert len(calls) <= 1
        if calls:
            assert calls[0]["id"] == selection.tool_id
            assert calls[0]["function"]["name"] == "get_weather"
    assert last.raw is not None
    assert last.raw["route"]["provider"] == "ollama"


async def test_astreamed_tool_call(tool_llm: ForgeLLM) -> None:
    stream = await tool_llm.astream_chat_with_tools(
        [WEATHER], user_msg=QUESTION, tool_choice="get_weather"
    )
    responses = [response async for response in stream]
    [selection] = tool_llm.get_tool_calls_from_response(responses[-1])
    assert selection.tool_name == "get_weather"


def test_tool_call_and_result_round_trip_into_the_next_request(tool_llm: ForgeLLM) -> None:
    first = tool_llm.chat_with_tools([WEATHER], user_msg=QUESTION, tool_choice="get_weather")
    [selection] = tool_llm.get_tool_calls_from_response(first)
    history = [
        ChatMessage(role=MessageRole.USER, content=QUESTION),
        first.message,
        ChatMessage(
            role=MessageRole.TOOL,
            content=get_weather(**selection.tool_kwargs),
            additional_kwargs={"tool_call_id": selection.tool_id},
        ),
    ]
    # The server validates the conversation: an assistant tool call followed by its result.
    answer = tool_llm.chat_with_tools([WEATHER], chat_history=history)
    assert answer.raw is not None
    assert answer.raw["route"]["attempts"][-1]["ok"] is True
    assert tool_llm.get_tool_calls_from_response(answer, error_on_no_tool_call=False) == []


def test_predict_and_call_runs_the_forced_tool(tool_llm: ForgeLLM) -> None:
    result = tool_llm.predict_and_call([WEATHER], user_msg=QUESTION, tool_choice="get_weather")
    assert result.sources[0].tool_name == "get_weather"
    assert result.response.startswith("It is sunny in ")


@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_calls_the_tool_once(
    tool_server: LocalServer, streaming: bool
) -> None:
    calls: list[str] = []

    def lookup_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"It is sunny in {city}."

    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=lookup_weather)],
        llm=ForgeLLM(config=config_for(ollama_on(tool_server)), max_tokens=MAX_TOKENS),
        system_prompt="You answer questions about the weather with the lookup_weather tool.",
        initial_tool_choice="lookup_weather",
        streaming=streaming,
    )
    handler = agent.run(user_msg=QUESTION)
    results = [
        event async for event in handler.stream_events() if isinstance(event, ToolCallResult)
    ]
    output = await handler
    assert len(calls) == 1
    [result] = results
    assert result.tool_name == "lookup_weather"
    assert result.tool_kwargs == {"city": calls[0]}
    assert result.tool_output.content == f"It is sunny in {calls[0]}."
    assert result.tool_id.startswith("call_")
    assert output.response.role == MessageRole.ASSISTANT
    # The run's output lists the one call made; the final answer asked for no other.
    assert [call.tool_id for call in output.tool_calls] == [result.tool_id]
    assert json.dumps(output.raw)  # the raw route is plain JSON
