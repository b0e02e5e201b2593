"""ForgeLLM's function calling on llama-cpp-python's server with the gemma chat format, which
has no tool calling of its own for ``auto``: forge emulates it through schema-constrained
output. The endpoint is configured with its base URL only (no ``dialect`` key).
"""

from __future__ import annotations

import pytest
from forge_test_support import LocalServer, config_for, openai_compatible_on
from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeLLM

pytestmark = pytest.mark.local_server


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is sunny in {city}."


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


WEATHER = FunctionTool.from_defaults(fn=get_weather)
ADD = FunctionTool.from_defaults(fn=add)
QUESTION = "What is the weather in Paris? Use the get_weather tool."


@pytest.fixture
def llm(local_server: LocalServer) -> ForgeLLM:
    # Greedy: with no temperature the server samples, seeded by how many requests it has
    # served, so the call would depend on which tests ran on it before.
    return ForgeLLM(
        config=config_for(openai_compatible_on(local_server)), temperature=0.0, max_tokens=64
    )


def test_chat_with_tools_auto_gets_a_call_with_valid_arguments(llm: ForgeLLM) -> None:
    response = llm.chat_with_tools([WEATHER, ADD], user_msg=QUESTION)
    [selection] = llm.get_tool_calls_from_response(response)
    assert selection.tool_name in ("get_weather", "add")
    if selection.tool_name == "get_weather":
        assert isinstance(selection.tool_kwargs["city"], str)
    assert selection.tool_id.startswith("call_")


def test_predict_and_call_runs_the_emulated_call(llm: ForgeLLM) -> None:
    response = llm.predict_and_call([WEATHER], user_msg=QUESTION)
    assert response.sources and response.sources[0].tool_name == "get_weather"
    assert str(response).startswith("It is sunny in ")
