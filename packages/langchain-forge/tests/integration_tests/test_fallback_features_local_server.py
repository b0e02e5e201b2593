"""Every ForgeChat feature keeps working when forge falls back: the first candidate is dead.

The dead candidate is ``ollama`` on a refused port of 127.0.0.1 (it claims tool calling and
JSON output, so the router tries it); the next one is real: llama-cpp-python's server with
``--chat_format chatml-function-calling`` (the ``tool_server`` fixture, reached as ``openai``).
Tool calls from that server are grammar-constrained, so their shape (not their values) is what
the tests check. Falling back to the embedded model in process is in
test_fallback_features_local_model.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_core import ForgeConfig
from forge_test_support import LocalServer, openai_compatible_on
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.tools import tool
from langchain_forge import ForgeChat
from langchain_forge_support import Joke, dead_first, merge_chunks, route_attempts

pytestmark = pytest.mark.local_server

MAX_TOKENS = 24
#: Room for a whole grammar-constrained JSON object from the tiny model.
JSON_MAX_TOKENS = 64
PROMPT = "Say hello."


@tool
def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


def _chat(config: ForgeConfig, max_tokens: int = MAX_TOKENS) -> ForgeChat:
    return ForgeChat(config=config, max_tokens=max_tokens, temperature=0.0)


# -- tools --------------------------------------------------------------------------------------


def test_bound_tools_survive_a_dead_first_candidate(tool_server: LocalServer) -> None:
    chat = _chat(dead_first(openai_compatible_on(tool_server)), JSON_MAX_TOKENS)
    answer = chat.bind_tools([magic_function], tool_choice="magic_function").invoke(
        "What is the value of magic_function(3)?"
    )
    assert isinstance(answer, AIMessage)
    assert [call["name"] for call in answer.tool_calls] == ["magic_function"]
    assert isinstance(answer.tool_calls[0]["args"]["input"], int)
    assert answer.tool_calls[0]["id"]
    assert route_attempts(answer) == [("ollama", False), ("openai", True)]
    assert answer.response_metadata["provider"] == "openai"


async def test_async_tool_choice_any_survives_a_dead_first_candidate(
    tool_server: LocalServer,
) -> None:
    chat = _chat(dead_first(openai_compatible_on(tool_server)), JSON_MAX_TOKENS)
    answer = await chat.bind_tools([magic_function], tool_choice="any").ainvoke(
        "What is the value of magic_function(3)?"
    )
    assert [call["name"] for call in answer.tool_calls] == ["magic_function"]
    assert route_attempts(answer) == [("ollama", False), ("openai", True)]


def test_streamed_tool_call_survives_a_dead_first_candidate(tool_server: LocalServer) -> None:
    chat = _chat(dead_first(openai_compatible_on(tool_server)), JSON_MAX_TOKENS)
    bound = chat.bind_tools([magic_function], tool_choice="magic_function")
    streamed = list(bound.stream("What is the value of magic_function(3)?"))
    chunks = [chunk for chunk in streamed if isinstance(chunk, AIMessageChunk)]
    assert chunks == streamed
    assert [chunk.chunk_position for chunk in chunks].count("last") == 1
    assert chunks[-1].chunk_position == "last"
    merged = merge_chunks(chunks)
    # The server repeats the name on every fragment; merged, it must still be the name once.
    assert [call["name"] for call in merged.tool_calls] == ["magic_function"]
    assert isinstance(merged.tool_calls[0]["args"]["input"], int)
    assert route_attempts(chunks[-1]) == [("ollama", False), ("openai", True)]


# -- structured output --------------------------------------------------------------------------


def test_function_calling_structured_output_survives_a_dead_first_candidate(
    tool_server: LocalServer,
) -> None:
    chat = _chat(dead_first(openai_compatible_on(tool_server)), JSON_MAX_TOKENS)
    structured = chat.with_structured_output(Joke, method="function_calling", include_raw=True)
    result = structured.invoke("Tell me a joke about cats.")
    assert isinstance(result, dict)
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], Joke)
    assert route_attempts(result["raw"]) == [("ollama", False), ("openai", True)]


def test_json_schema_structured_output_through_the_server_after_a_dead_candidate(
    tool_server: LocalServer,
) -> None:
    server = openai_compatible_on(tool_server, dialect="llama-cpp")
    chat = _chat(dead_first(server), JSON_MAX_TOKENS)
    result = chat.with_structured_output(Joke, include_raw=True).invoke("Tell me a joke.")
    assert route_attempts(result["raw"]) == [("ollama", False), ("openai", True)]
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], Joke)


# -- streaming and events -----------------------------------------------------------------------


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.errors: list[BaseException] = []

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


async def test_astream_is_one_clean_stream_after_a_dead_first_candidate(
    tool_server: LocalServer,
) -> None:
    chat = _chat(dead_first(openai_compatible_on(tool_server)))
    recorder = _Recorder()
    chunks = [chunk async for chunk in chat.astream(PROMPT, config={"callbacks": [recorder]})]
    assert chunks[-1].chunk_position == "last"
    assert [chunk for chunk in chunks if chunk.chunk_position == "last"] == [chunks[-1]]
    assert "".join(chunk.text for chunk in chunks)
    assert recorder.tokens == [chunk.text for chunk in chunks]
    assert recorder.errors == []
    assert route_attempts(chunks[-1]) == [("ollama", False), ("openai", True)]


async def test_astream_events_see_one_clean_stream_after_a_dead_first_candidate(
    tool_server: LocalServer,
) -> None:
    chat = _chat(dead_first(openai_compatible_on(tool_server)))
    events = [event async for event in chat.astream_events(PROMPT, version="v2")]
    kinds = [event["event"] for event in events]
    # One run: one start, its token events, one end, and nothing from the dead attempt.
    assert kinds[0] == "on_chat_model_start" and kinds[-1] == "on_chat_model_end"
    assert kinds.count("on_chat_model_start") == 1 and kinds.count("on_chat_model_end") == 1
    assert set(kinds) == {"on_chat_model_start", "on_chat_model_stream", "on_chat_model_end"}
    assert len({event["run_id"] for event in events}) == 1
    streamed = [
        event["data"]["chunk"] for event in events if event["event"] == "on_chat_model_stream"
    ]
    output = events[-1]["data"]["output"]
    assert "".join(chunk.text for chunk in streamed) == output.text
    assert output.text
    assert route_attempts(output) == [("ollama", False), ("openai", True)]
    assert [chunk for chunk in streamed if "route" in chunk.response_metadata] == [streamed[-1]]
