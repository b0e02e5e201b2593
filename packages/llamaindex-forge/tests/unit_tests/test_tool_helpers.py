"""Tool conversion and assembly for ForgeLLM's function calling (no model is called: the
answers with tool calls come from a scripted ``ollama`` deployment,
`forge_core.testing.ScriptedBackend`)."""

from __future__ import annotations

from typing import Any

import forge_core
import pytest
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import FunctionTool
from llamaindex_forge import ForgeLLM
from llamaindex_forge._utils import (
    ToolCallAssembler,
    stream_response,
    to_forge_message,
    tool_choice_param,
    tool_specs,
)
from llamaindex_forge.base import _parse_incomplete_json

OLLAMA = forge_core.Provider.OLLAMA


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD = FunctionTool.from_defaults(fn=add)


def llm(*replies: Reply) -> ForgeLLM:
    """A `ForgeLLM` over one scripted ``ollama`` deployment (model ``m``) playing ``replies``."""
    backend = ScriptedBackend(*replies, provider="ollama", model="m")
    return ForgeLLM(
        config=config_for({"name": "ollama"}), backends={"ollama": backend}, max_tokens=8
    )


def delta(index: int, **fields: str) -> forge_core.ToolCallDelta:
    return forge_core.ToolCallDelta(index=index, **fields)


def wire_add_call(call_id: str) -> dict[str, Any]:
    """The OpenAI wire form of the call ``add(a=1, b=2)`` with id ``call_id``."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
    }


def test_forge_llm_is_a_function_calling_llm() -> None:
    assert FunctionCallingLLM in ForgeLLM.__mro__


def test_tool_specs_are_openai_function_tools() -> None:
    [spec] = tool_specs([ADD])
    assert spec["type"] == "function"
    assert spec["function"]["name"] == "add"
    assert spec["function"]["description"].endswith("Add two integers.")
    assert spec["function"]["parameters"]["required"] == ["a", "b"]


ONE_TOOL = [{"type": "function", "function": {"name": "add"}}]
TWO_TOOLS = [*ONE_TOOL, {"type": "function", "function": {"name": "mul"}}]
FORCE_ADD = {"type": "function", "function": {"name": "add"}}


@pytest.mark.parametrize(
    ("choice", "required", "tools", "expected"),
    [
        (None, False, TWO_TOOLS, None),
        (None, True, TWO_TOOLS, "required"),
        (None, True, ONE_TOOL, FORCE_ADD),
        ("auto", True, TWO_TOOLS, "auto"),
        ("none", False, TWO_TOOLS, "none"),
        ("required", False, TWO_TOOLS, "required"),
        ("add", False, TWO_TOOLS, FORCE_ADD),
        (FORCE_ADD, False, TWO_TOOLS, FORCE_ADD),
    ],
)
def test_tool_choice_param(choice: object, required: bool, tools: Any, expected: object) -> None:
    assert tool_choice_param(choice, tools, tool_required=required) == expected  # type: ignore[arg-type]


def test_tool_choice_naming_no_given_tool_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ForgeLLM: tool_choice 'div'.*add, mul"):
        tool_choice_param("div", TWO_TOOLS, tool_required=False)


def test_prepare_chat_with_tools_builds_chat_arguments() -> None:
    history = [ChatMessage(role=MessageRole.SYSTEM, content="be brief")]
    prepared = llm()._prepare_chat_with_tools(
        [ADD], user_msg="1 + 2?", chat_history=history, tool_choice="add", max_tokens=4
    )
    assert [m.content for m in prepared["messages"]] == ["be brief", "1 + 2?"]
    assert history == [ChatMessage(role=MessageRole.SYSTEM, content="be brief")]
    assert prepared["tools"] == tool_specs([ADD])
    assert prepared["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert prepared["max_tokens"] == 4


def test_prepare_chat_with_tools_leaves_tool_choice_out_by_default() -> None:
    prepared = llm()._prepare_chat_with_tools([ADD], user_msg="hi")
    assert "tool_choice" not in prepared
    # One tool, required: that tool by name, as ForgeChat sends it (forge_core.resolve_tool_choice).
    required = llm()._prepare_chat_with_tools([ADD], user_msg="hi", tool_required=True)
    assert required["tool_choice"] == {"type": "function", "function": {"name": "add"}}


def test_prepare_chat_with_no_tools_sends_no_tools() -> None:
    prepared = llm()._prepare_chat_with_tools([], user_msg="hi", tool_choice="add")
    assert "tools" not in prepared
    assert "tool_choice" not in prepared


def _answer(*calls: forge_core.ToolCall) -> ChatResponse:
    """ForgeLLM's answer when the model calls ``calls`` (none: an empty answer)."""
    response = llm(Reply(content="", tool_calls=calls)).chat(
        [ChatMessage(role=MessageRole.USER, content="1 + 2?")]
    )
    assert response.raw is not None and response.raw["provider"] == OLLAMA.value
    return response


def test_tool_calls_are_kept_with_their_ids_on_the_message() -> None:
    response = _answer(
        forge_core.ToolCall(id="call_a", name="add", arguments={"a": 1, "b": 2}),
        forge_core.ToolCall(id="call_b", name="add", arguments={"a": 1, "b": 2}),
    )
    assert response.message.additional_kwargs["tool_calls"] == [
        wire_add_call("call_a"),
        wire_add_call("call_b"),
    ]
    assert llm().get_tool_calls_from_response(response) == [
        ToolSelection(tool_id="call_a", tool_name="add", tool_kwargs={"a": 1, "b": 2}),
        ToolSelection(tool_id="call_b", tool_name="add", tool_kwargs={"a": 1, "b": 2}),
    ]


def test_an_answer_with_tool_calls_round_trips_into_a_request() -> None:
    calls = [forge_core.ToolCall(id="call_a", name="add", arguments={"a": 1, "b": 2})]
    message = to_forge_message(_answer(*calls).message)
    assert message.role == "assistant"
    assert message.tool_calls == calls


def test_no_tool_call_is_an_error_only_when_asked() -> None:
    response = _answer()
    assert "tool_calls" not in response.message.additional_kwargs
    assert llm().get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="expected at least one tool call"):
        llm().get_tool_calls_from_response(response)


def test_validation_keeps_one_call_unless_parallel_calls_are_allowed() -> None:
    calls = [
        forge_core.ToolCall(id="call_a", name="add", arguments={"a": 1, "b": 2}),
        forge_core.ToolCall(id="call_b", name="add", arguments={"a": 3, "b": 4}),
    ]
    both = llm()._validate_chat_with_tools_response(
        _answer(*calls), [ADD], allow_parallel_tool_calls=True
    )
    assert len(both.message.additional_kwargs["tool_calls"]) == 2
    one = llm()._validate_chat_with_tools_response(_answer(*calls), [ADD])
    assert [c["id"] for c in one.message.additional_kwargs["tool_calls"]] == ["call_a"]


def test_two_identical_streamed_calls_stay_two() -> None:
    assembler = ToolCallAssembler()
    assembler.add([delta(0, id="call_a", name="add", arguments='{"a": 1, ')])
    assembler.add([delta(1, id="call_b", name="add", arguments='{"a": 1, ')])
    assembler.add([delta(0, arguments='"b": 2}'), delta(1, arguments='"b": 2}')])
    assert assembler.wire() == [wire_add_call("call_a"), wire_add_call("call_b")]


def test_a_name_repeated_on_every_fragment_is_not_doubled() -> None:
    # llama-cpp-python's server repeats id and name on each fragment of one call.
    assembler = ToolCallAssembler()
    for piece in ('{"a"', ": 1,", ' "b": 2}'):
        assembler.add([delta(0, id="call_x", name="add", arguments=piece)])
    [call] = assembler.wire()
    assert call["id"] == "call_x"
    assert call["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}


def test_a_call_without_an_id_gets_one_from_its_index() -> None:
    assembler = ToolCallAssembler()
    assembler.add([delta(3, name="add", arguments="{}")])
    assert assembler.wire()[0]["id"] == "call_3"


def test_partial_arguments_read_as_empty_until_the_stream_ends() -> None:
    assembler = ToolCallAssembler()
    assembler.add([delta(0, id="call_a", name="add", arguments='{"a": 1')])
    chunk = forge_core.ChatChunk(provider=OLLAMA, model="m")
    in_flight = stream_response(chunk, "", assembler.wire())
    assert llm().get_tool_calls_from_response(in_flight) == [
        ToolSelection(tool_id="call_a", tool_name="add", tool_kwargs={})
    ]
    assembler.add([delta(0, arguments=', "b": 2}')])
    last = forge_core.ChatChunk(
        provider=OLLAMA,
        model="m",
        finish_reason="tool_calls",
        route=forge_core.RouteTrail(provider=OLLAMA, model="m"),
    )
    done = stream_response(last, "", assembler.wire())
    [selection] = llm().get_tool_calls_from_response(done)
    assert selection.tool_kwargs == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("{", {}),
        ('{"name": "re', {"name": "re"}),
        ('{"name": "red", ', {"name": "red"}),
        ('{"name": "red", "warm":', {"name": "red"}),
        ('{"name": "red", "wa', {"name": "red"}),
        ('{"na', {}),
        ('{"items": [1, 2', {"items": [1, 2]}),
        ('{"q": "a \\"quoted', {"q": 'a "quoted'}),
        ('{"name": "red"}', {"name": "red"}),
    ],
)
def test_incomplete_json_is_closed_for_partial_objects(text: str, expected: object) -> None:
    assert _parse_incomplete_json(text) == expected
