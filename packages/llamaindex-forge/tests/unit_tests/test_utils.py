"""Conversions between LlamaIndex and forge_core types (no network)."""

from __future__ import annotations

import forge_core
import pytest
from forge_core import routing_overrides
from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
    TextBlock,
    ToolCallBlock,
    VideoBlock,
)
from llamaindex_forge._utils import (
    chat_response,
    request_params,
    stream_response,
    to_forge_message,
    to_forge_messages,
)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (MessageRole.SYSTEM, "system"),
        (MessageRole.USER, "user"),
        (MessageRole.ASSISTANT, "assistant"),
    ],
)
def test_roles_map_to_forge_roles(role: MessageRole, expected: str) -> None:
    message = to_forge_message(ChatMessage(role=role, content="hello"))
    assert message == forge_core.Message(role=expected, content="hello")


def test_tool_message_carries_its_tool_call_id() -> None:
    message = to_forge_message(
        ChatMessage(
            role=MessageRole.TOOL,
            content='{"temperature": 21}',
            additional_kwargs={"tool_call_id": "call_1", "name": "weather"},
        )
    )
    assert message.role == "tool"
    assert message.tool_call_id == "call_1"
    assert message.name == "weather"
    assert message.content == '{"temperature": 21}'


def test_tool_message_without_tool_call_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        to_forge_message(ChatMessage(role=MessageRole.TOOL, content="42"))


def test_text_blocks_are_joined_with_newlines() -> None:
    message = ChatMessage(
        role=MessageRole.USER, blocks=[TextBlock(text="first"), TextBlock(text="second")]
    )
    assert to_forge_message(message).content == "first\nsecond"
    assert to_forge_message(message).content == message.content


def test_message_without_blocks_has_no_content() -> None:
    assert to_forge_message(ChatMessage(role=MessageRole.ASSISTANT)).content is None


def test_empty_text_stays_empty_text() -> None:
    assert to_forge_message(ChatMessage(role=MessageRole.USER, content="")).content == ""


@pytest.mark.parametrize(
    "role", [MessageRole.FUNCTION, MessageRole.CHATBOT, MessageRole.MODEL, MessageRole.DEVELOPER]
)
def test_unsupported_roles_are_rejected(role: MessageRole) -> None:
    with pytest.raises(ValueError, match=f"role '{role.value}' is not supported"):
        to_forge_message(ChatMessage(role=role, content="hi"))


def test_video_blocks_are_rejected() -> None:
    message = ChatMessage(
        role=MessageRole.USER,
        blocks=[TextBlock(text="what is this?"), VideoBlock(url="https://example.com/a.mp4")],
    )
    with pytest.raises(ValueError, match="'video' content blocks are not supported"):
        to_forge_message(message)


def test_tool_call_blocks_become_forge_tool_calls() -> None:
    message = ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[
            ToolCallBlock(tool_name="weather", tool_call_id="c1", tool_kwargs={"city": "Oslo"}),
            ToolCallBlock(tool_name="weather", tool_call_id="c2", tool_kwargs='{"city": "Oslo"}'),
        ],
    )
    converted = to_forge_message(message)
    assert converted.content is None
    assert converted.tool_calls == [
        forge_core.ToolCall(id="c1", name="weather", arguments={"city": "Oslo"}),
        forge_core.ToolCall(id="c2", name="weather", arguments={"city": "Oslo"}),
    ]


def test_tool_call_blocks_outside_assistant_messages_are_rejected() -> None:
    message = ChatMessage(
        role=MessageRole.USER, blocks=[ToolCallBlock(tool_name="weather", tool_call_id="c")]
    )
    with pytest.raises(ValueError, match="'tool_call' content blocks are not supported"):
        to_forge_message(message)


def test_tool_calls_in_additional_kwargs_become_forge_tool_calls() -> None:
    message = ChatMessage(
        role=MessageRole.ASSISTANT,
        content="",
        additional_kwargs={
            "provider": "ollama",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "weather"}},
                {"id": "d", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
    )
    assert to_forge_message(message).tool_calls == [
        forge_core.ToolCall(id="c", name="weather", arguments={}),
        forge_core.ToolCall(id="d", name="weather", arguments={"city": "Rome"}),
    ]


@pytest.mark.parametrize(
    "tool_calls",
    [
        {"id": "c"},
        [{"id": "c"}],
        [{"id": "c", "function": {"name": "weather", "arguments": "not json"}}],
        [{"id": "c", "function": {"name": "weather", "arguments": "[1, 2]"}}],
    ],
)
def test_malformed_tool_calls_in_additional_kwargs_are_rejected(tool_calls: object) -> None:
    message = ChatMessage(
        role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": tool_calls}
    )
    with pytest.raises(ValueError, match=r"tool_calls|arguments"):
        to_forge_message(message)


def test_conversation_keeps_order() -> None:
    converted = to_forge_messages(
        [
            ChatMessage(role=MessageRole.SYSTEM, content="be brief"),
            ChatMessage(role=MessageRole.USER, content="hi"),
            ChatMessage(role=MessageRole.ASSISTANT, content="hello"),
            ChatMessage(role=MessageRole.USER, content="bye"),
        ]
    )
    assert [(m.role, m.content) for m in converted] == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "bye"),
    ]


def test_roles_given_as_strings_are_accepted() -> None:
    assert to_forge_message(ChatMessage(role="system", content="x")).role == "system"


# -- overrides and request parameters ----------------------------------------------------------


def test_no_options_means_no_overrides() -> None:
    assert routing_overrides() == {}


def test_overrides_have_forge_yaml_shape() -> None:
    overrides = routing_overrides(
        fallback_order=["openai", "ollama"], local_first=False, local_only=True, timeout=12.5
    )
    assert overrides == {
        "providers": {"fallback": {"order": ["openai", "ollama"]}},
        "model_preferences": {"local_first": False, "local_only": True},
        "routing": {"total_timeout_seconds": 12.5},
    }
    # The shape is the one forge itself validates.
    config = forge_core.ForgeConfig.model_validate(overrides)
    assert config.providers.fallback.order == [
        forge_core.Provider.OPENAI,
        forge_core.Provider.OLLAMA,
    ]


def test_overrides_only_for_options_that_are_set() -> None:
    assert routing_overrides(local_only=False) == {"model_preferences": {"local_only": False}}
    assert routing_overrides(fallback_order=[]) == {"providers": {"fallback": {"order": []}}}


def test_request_params_drop_unset_defaults_and_let_kwargs_win() -> None:
    params = request_params(
        {"model": None, "temperature": 0.2, "max_tokens": 16}, {"max_tokens": 4, "stop": ["\n"]}
    )
    assert params == {"temperature": 0.2, "max_tokens": 4, "stop": ["\n"]}


def test_request_params_reject_unknown_keywords() -> None:
    with pytest.raises(TypeError, match="unknown keyword\\(s\\) 'frobnicate'"):
        request_params({}, {"frobnicate": True})


def test_tools_and_tool_choice_are_request_params() -> None:
    tools = [{"type": "function", "function": {"name": "weather"}}]
    assert request_params({}, {"tools": tools, "tool_choice": "auto"}) == {
        "tools": tools,
        "tool_choice": "auto",
    }


# -- responses ---------------------------------------------------------------------------------


def _route() -> forge_core.RouteTrail:
    return forge_core.RouteTrail(
        provider=forge_core.Provider.OPENAI,
        model="m",
        attempts=[
            forge_core.Attempt(
                provider=forge_core.Provider.OLLAMA,
                model="llama3.2",
                ok=False,
                error_kind="unavailable",
                message="refused",
                elapsed_ms=1.0,
            ),
            forge_core.Attempt(
                provider=forge_core.Provider.OPENAI, model="m", ok=True, elapsed_ms=2.0
            ),
        ],
    )


def test_chat_response_carries_route_usage_and_provider() -> None:
    response = chat_response(
        forge_core.ChatResponse(
            content="hello",
            finish_reason="stop",
            usage=forge_core.Usage(input_tokens=3, output_tokens=2),
            provider=forge_core.Provider.OPENAI,
            model="m",
            route=_route(),
        )
    )
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "hello"
    assert response.message.additional_kwargs == {"provider": "openai", "model": "m"}
    assert response.raw is not None
    assert response.raw["provider"] == "openai"
    assert response.raw["model"] == "m"
    assert response.raw["finish_reason"] == "stop"
    assert response.raw["usage"] == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert response.raw["route"] == _route().model_dump(mode="json")
    assert response.raw["route"]["attempts"][0]["provider"] == "ollama"


def test_chat_response_without_content_or_usage() -> None:
    response = chat_response(
        forge_core.ChatResponse(
            content=None, provider=forge_core.Provider.OLLAMA, model="m", route=_route()
        )
    )
    assert response.message.content == ""
    assert response.raw is not None
    assert response.raw["usage"] is None


def test_stream_response_delta_and_accumulated_text() -> None:
    chunk = forge_core.ChatChunk(content=" world", provider=forge_core.Provider.OLLAMA, model="m")
    response = stream_response(chunk, "hello world")
    assert response.delta == " world"
    assert response.message.content == "hello world"
    assert response.message.additional_kwargs == {"provider": "ollama", "model": "m"}
    assert response.raw is not None
    assert response.raw["route"] is None


def test_last_stream_response_carries_route_and_usage() -> None:
    chunk = forge_core.ChatChunk(
        content="",
        finish_reason="length",
        usage=forge_core.Usage(input_tokens=5, output_tokens=1),
        provider=forge_core.Provider.OPENAI,
        model="m",
        route=_route(),
    )
    response = stream_response(chunk, "all of it")
    assert response.delta == ""
    assert response.message.content == "all of it"
    assert response.raw is not None
    assert response.raw["finish_reason"] == "length"
    assert response.raw["usage"] == {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
    assert response.raw["route"]["provider"] == "openai"
