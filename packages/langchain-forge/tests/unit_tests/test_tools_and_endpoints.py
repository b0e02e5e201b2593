"""bind_tools, with_structured_output, api_key/base_url and env defaults, without network."""

from __future__ import annotations

from typing import Any

import forge_core
import pytest
from forge_test_support import closed_port_url, config_for
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableBinding, RunnableSequence
from langchain_core.tools import tool
from langchain_forge import ForgeChat
from langchain_forge._utils import chunk_to_message_chunk, message_to_forge, tool_choice_to_openai
from pydantic import BaseModel, SecretStr


@tool
def magic_function(input: int) -> int:
    """Apply a magic function to an input."""
    return input + 2


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


def _chat(**fields: Any) -> ForgeChat:
    config = config_for({"name": "openai", "base_url": closed_port_url()})
    return ForgeChat(model="openai:m", config=config, **fields)


def _bound_kwargs(runnable: Any) -> dict[str, Any]:
    if isinstance(runnable, RunnableSequence):
        runnable = runnable.first
    assert isinstance(runnable, RunnableBinding)
    return dict(runnable.kwargs)


TOOLS = [{"type": "function", "function": {"name": "a"}}]
TWO_TOOLS = [*TOOLS, {"type": "function", "function": {"name": "b"}}]
FORCE_A = {"type": "function", "function": {"name": "a"}}


@pytest.mark.parametrize(
    ("choice", "tools", "expected"),
    [
        (None, TOOLS, None),
        (False, TOOLS, None),
        ("auto", TOOLS, "auto"),
        ("none", TOOLS, "none"),
        ("any", TWO_TOOLS, "required"),
        ("required", TWO_TOOLS, "required"),
        (True, TWO_TOOLS, "required"),
        ("any", TOOLS, FORCE_A),
        ("b", TWO_TOOLS, {"type": "function", "function": {"name": "b"}}),
        (FORCE_A, TWO_TOOLS, FORCE_A),
    ],
)
def test_tool_choice_maps_to_openai_shapes(choice: Any, tools: Any, expected: Any) -> None:
    assert tool_choice_to_openai(choice, tools) == expected


def test_tool_choice_naming_no_bound_tool_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'c'.*a, b"):
        tool_choice_to_openai("c", TWO_TOOLS)


def test_bind_tools_binds_openai_tools_and_choice() -> None:
    bound = _chat().bind_tools([magic_function, Joke], tool_choice="Joke", max_tokens=5)
    kwargs = _bound_kwargs(bound)
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["magic_function", "Joke"]
    assert kwargs["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}
    assert kwargs["max_tokens"] == 5


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("json_schema", {"type": "json_schema"}),
        ("json_mode", {"type": "json_object"}),
    ],
)
def test_structured_output_binds_a_response_format(method: Any, expected: Any) -> None:
    kwargs = _bound_kwargs(_chat().with_structured_output(Joke, method=method))
    assert kwargs["response_format"]["type"] == expected["type"]
    if method == "json_schema":
        json_schema = kwargs["response_format"]["json_schema"]
        assert json_schema["name"] == "Joke"
        assert set(json_schema["schema"]["properties"]) == {"setup", "punchline"}
    assert "tools" not in kwargs


def test_function_calling_structured_output_forces_the_schema_tool() -> None:
    kwargs = _bound_kwargs(_chat().with_structured_output(Joke, method="function_calling"))
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["Joke"]
    assert kwargs["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}


def test_structured_output_parsers_read_the_answer() -> None:
    parser = _chat().with_structured_output(Joke, method="function_calling")
    assert isinstance(parser, RunnableSequence)
    message = AIMessage(
        content="",
        tool_calls=[{"name": "Joke", "args": {"setup": "s", "punchline": "p"}, "id": "1"}],
    )
    assert parser.last.invoke(message) == Joke(setup="s", punchline="p")
    json_parser = _chat().with_structured_output(
        {"title": "J", "type": "object"}, method="json_mode"
    )
    assert isinstance(json_parser, RunnableSequence)
    assert json_parser.last.invoke(AIMessage(content='{"a": 1}')) == {"a": 1}


def test_unknown_structured_output_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown structured output method"):
        _chat().with_structured_output(Joke, method="xml")  # type: ignore[arg-type]


def test_tool_use_blocks_of_an_ai_message_are_carried_by_its_tool_calls() -> None:
    message = AIMessage(
        content=[
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "1", "name": "f", "input": {}},
        ],
        tool_calls=[{"name": "f", "args": {}, "id": "1"}],
    )
    forge_message = message_to_forge(message)
    assert forge_message.content == "calling"
    assert [call.name for call in forge_message.tool_calls] == ["f"]


def test_a_tool_name_repeated_on_every_fragment_merges_to_the_name_once() -> None:
    named: set[int] = set()

    def chunk(arguments: str, last: bool = False) -> AIMessageChunk:
        delta = forge_core.ToolCallDelta(index=0, id="c1", name="Joke", arguments=arguments)
        route = forge_core.RouteTrail() if last else None
        forge_chunk = forge_core.ChatChunk(
            tool_call_deltas=[delta], provider=forge_core.Provider.OPENAI, model="m", route=route
        )
        return chunk_to_message_chunk(forge_chunk, named)

    merged = chunk('{"setup": "s", ') + chunk('"punchline": "p"}', last=True)
    assert merged.tool_calls == [
        {"name": "Joke", "args": {"setup": "s", "punchline": "p"}, "id": "c1", "type": "tool_call"}
    ]


def test_endpoint_fields_configure_the_pinned_provider() -> None:
    chat = ForgeChat(
        model="openrouter:m",
        base_url="http://127.0.0.1:9/v1",
        api_key=SecretStr("sk-unit-secret-123"),
    )
    assert chat.forge_overrides()["providers"]["cloud"]["openrouter"]["base_url"] == (
        "http://127.0.0.1:9/v1"
    )
    # With no provider in `model`, they configure openai.
    unpinned = ForgeChat(model=None, base_url="http://127.0.0.1:9/v1")
    assert unpinned.forge_overrides()["providers"]["cloud"]["openai"] == {
        "base_url": "http://127.0.0.1:9/v1"
    }
    assert "sk-unit-secret-123" not in repr(chat) and "**********" in repr(chat)


def test_model_and_config_default_to_the_forge_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_DEFAULT_MODEL", "ollama:llama3.2")
    monkeypatch.setenv("FORGE_CONFIG", "/etc/forge.yaml")
    chat = ForgeChat()
    assert (chat.model, chat.config) == ("ollama:llama3.2", "/etc/forge.yaml")
    assert ForgeChat(model="openai:x", config=None).model == "openai:x"
