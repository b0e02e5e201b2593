"""Tool calls through ForgeChat on llama-cpp-python's server with the gemma chat format, which
has no tool calling of its own for ``auto``: forge emulates it through schema-constrained output
(``forge_core.backends.http.openai.tool_emulation``). Configured as a newcomer configures it: only
``base_url`` and ``api_key``.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import ForgeConfig
from forge_test_support import LocalServer
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_forge import ForgeChat

pytestmark = pytest.mark.local_server


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is sunny in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _newcomer(server: LocalServer, **extra: Any) -> ForgeChat:
    return ForgeChat(
        model="openai:local",
        base_url=server.openai_base_url,
        api_key="sk-local",
        config=ForgeConfig(),
        fallback_order=["openai"],
        temperature=0.0,
        max_tokens=64,
        **extra,
    )


def _one_weather_call(message: Any) -> dict[str, Any]:
    assert isinstance(message, AIMessage)
    [call] = message.tool_calls
    assert call["name"] == "get_weather"
    assert isinstance(call["args"]["city"], str)
    assert call["id"]
    return dict(call)


def test_required_tool_call_of_several_tools(local_server: LocalServer) -> None:
    llm = _newcomer(local_server).bind_tools([get_weather, add], tool_choice="any")
    message = llm.invoke("What is the weather in Paris?")
    assert isinstance(message, AIMessage)
    [call] = message.tool_calls
    assert call["name"] in ("get_weather", "add")
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_named_tool_call_has_valid_arguments(local_server: LocalServer) -> None:
    llm = _newcomer(local_server).bind_tools([get_weather], tool_choice="get_weather")
    _one_weather_call(llm.invoke("What is the weather in Paris?"))


def test_auto_gives_a_call_or_an_answer(local_server: LocalServer) -> None:
    llm = _newcomer(local_server).bind_tools([get_weather], tool_choice="auto")
    message = llm.invoke("What is the weather in Paris? Use the get_weather tool.")
    assert isinstance(message, AIMessage)
    if message.tool_calls:
        _one_weather_call(message)
    else:
        assert message.text and not message.text.lstrip().startswith("{")


def test_streamed_required_call_arrives_whole_at_the_end(local_server: LocalServer) -> None:
    llm = _newcomer(local_server).bind_tools([get_weather, add], tool_choice="any")
    chunks = list(llm.stream("What is the weather in Paris?"))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    [call] = merged.tool_calls
    assert call["name"] in ("get_weather", "add")


def test_tool_result_round_trip_answers(local_server: LocalServer) -> None:
    llm = _newcomer(local_server).bind_tools([get_weather], tool_choice="auto")
    history = [
        HumanMessage("What is the weather in Paris?"),
        AIMessage(
            "", tool_calls=[{"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}]
        ),
        ToolMessage("It is sunny in Paris.", tool_call_id="call_1"),
    ]
    message = llm.invoke(history)
    assert isinstance(message, AIMessage)
    assert message.text or message.tool_calls
