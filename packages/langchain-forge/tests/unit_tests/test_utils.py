"""Conversions between LangChain messages and forge_core types (no network, no model)."""

from __future__ import annotations

from typing import Any

import forge_core
import pytest
from forge_core import (
    Attempt,
    ChatChunk,
    ChatResponse,
    Provider,
    RouteTrail,
    ToolCallDelta,
    Usage,
    routing_overrides,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_forge._utils import (
    chunk_to_message_chunk,
    message_from_forge,
    message_to_forge,
    messages_to_forge,
    request_params,
    response_to_message,
)

CONVERSATION: list[BaseMessage] = [
    SystemMessage(content="You are terse."),
    HumanMessage(content="What is 2 + 2?", name="alice"),
    AIMessage(
        content="",
        tool_calls=[{"id": "call_1", "name": "add", "args": {"a": 2, "b": 2}, "type": "tool_call"}],
    ),
    ToolMessage(content="4", tool_call_id="call_1"),
    AIMessage(content="4"),
]


def _route(provider: Provider = Provider.OLLAMA) -> RouteTrail:
    return RouteTrail(
        provider=provider,
        model="gemma-3-270m",
        attempts=[
            Attempt(
                provider=Provider.OPENAI,
                model="gpt-4o-mini",
                ok=False,
                error_kind="unavailable",
                message="refused",
                elapsed_ms=1.5,
            ),
            Attempt(provider=provider, model="gemma-3-270m", ok=True, elapsed_ms=20.0),
        ],
        ttft_ms=10.0,
        total_ms=21.5,
    )


def test_each_langchain_message_type_maps_to_its_forge_role() -> None:
    converted = messages_to_forge(CONVERSATION)
    assert [m.role for m in converted] == ["system", "user", "assistant", "tool", "assistant"]
    assert converted[1].name == "alice"
    assert converted[2].tool_calls == [
        forge_core.ToolCall(id="call_1", name="add", arguments={"a": 2, "b": 2})
    ]
    assert converted[3].tool_call_id == "call_1"
    assert converted[3].content == "4"


@pytest.mark.parametrize("message", CONVERSATION, ids=lambda m: type(m).__name__)
def test_langchain_to_forge_to_langchain_round_trip(message: BaseMessage) -> None:
    back = message_from_forge(message_to_forge(message))
    assert type(back) is type(message)
    assert back.content == message.content
    assert back.name == message.name
    if isinstance(message, AIMessage):
        assert isinstance(back, AIMessage)
        assert back.tool_calls == message.tool_calls
    if isinstance(message, ToolMessage):
        assert isinstance(back, ToolMessage)
        assert back.tool_call_id == message.tool_call_id


@pytest.mark.parametrize(
    "message",
    [
        forge_core.Message(role="system", content="be brief"),
        forge_core.Message(role="user", content="hi", name="bob"),
        forge_core.Message(
            role="assistant",
            content="",
            tool_calls=[forge_core.ToolCall(id="c9", name="lookup", arguments={"q": "x"})],
        ),
        forge_core.Message(role="tool", content="found", tool_call_id="c9"),
    ],
    ids=lambda m: m.role,
)
def test_forge_to_langchain_to_forge_round_trip(message: forge_core.Message) -> None:
    assert message_to_forge(message_from_forge(message)) == message


def test_chat_message_with_a_known_role_is_accepted() -> None:
    assert message_to_forge(ChatMessage(role="assistant", content="ok")).role == "assistant"


@pytest.mark.parametrize(
    "message",
    [
        ChatMessage(role="critic", content="meh"),
        FunctionMessage(name="f", content="{}"),
    ],
    ids=["chat-message-unknown-role", "function-message"],
)
def test_unsupported_message_types_raise_a_clear_value_error(message: BaseMessage) -> None:
    with pytest.raises(ValueError, match="cannot send a"):
        message_to_forge(message)


def test_list_of_text_blocks_is_joined() -> None:
    message = HumanMessage(
        content=["Hello, ", {"type": "text", "text": "world"}, {"type": "text", "text": "!"}]
    )
    assert message_to_forge(message).content == "Hello, world!"


@pytest.mark.parametrize(
    "block",
    [
        {"type": "text"},
        {"type": "video", "url": "https://example.com/cat.mp4"},
        {"type": "image", "file_id": "file-abc"},
        {"type": "image", "source_type": "id", "id": "file-abc"},
    ],
    ids=["text-without-text", "video", "file-id", "source-type-id"],
)
def test_a_block_forge_cannot_carry_raises_a_clear_value_error(block: dict[str, Any]) -> None:
    message = HumanMessage(content=["look:", block])
    with pytest.raises(ValueError, match=r"HumanMessage content block 1 "):
        message_to_forge(message)


def test_content_that_is_neither_text_nor_a_list_raises() -> None:
    with pytest.raises(ValueError, match="string or a list of content blocks"):
        message_to_forge(HumanMessage.model_construct(content=42))


def test_ai_tool_call_without_id_raises() -> None:
    message = AIMessage(
        content="", tool_calls=[{"id": None, "name": "add", "args": {}, "type": "tool_call"}]
    )
    with pytest.raises(ValueError, match="has no id"):
        message_to_forge(message)


def test_ai_message_with_invalid_tool_calls_raises() -> None:
    message = AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "id": "c1",
                "name": "add",
                "args": "{not json",
                "error": "bad",
                "type": "invalid_tool_call",
            }
        ],
    )
    with pytest.raises(ValueError, match="invalid_tool_calls"):
        message_to_forge(message)


def test_response_becomes_an_ai_message_with_usage_tool_calls_and_route() -> None:
    response = ChatResponse(
        content="four",
        tool_calls=[forge_core.ToolCall(id="c1", name="add", arguments={"a": 2})],
        finish_reason="stop",
        usage=Usage(input_tokens=7, output_tokens=3),
        provider=Provider.OLLAMA,
        model="gemma-3-270m",
        route=_route(),
    )
    message = response_to_message(response)
    assert message.content == "four"
    assert message.tool_calls == [
        {"id": "c1", "name": "add", "args": {"a": 2}, "type": "tool_call"}
    ]
    assert message.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    metadata = message.response_metadata
    assert metadata["model_name"] == "gemma-3-270m"
    assert metadata["provider"] == "ollama"
    assert metadata["finish_reason"] == "stop"
    assert metadata["route"] == response.route.model_dump(mode="json")
    assert [a["provider"] for a in metadata["route"]["attempts"]] == ["openai", "ollama"]


def test_response_without_usage_or_content() -> None:
    response = ChatResponse(
        content=None,
        provider=Provider.OPENAI,
        model="m",
        route=RouteTrail(provider=Provider.OPENAI),
    )
    message = response_to_message(response)
    assert message.content == ""
    assert message.usage_metadata is None
    assert message.tool_calls == []


def test_content_chunks_carry_no_usage_or_metadata_and_the_last_chunk_carries_both() -> None:
    body = ChatChunk(content="Hel", provider=Provider.HUGGINGFACE, model="gemma-3-270m")
    last = ChatChunk(
        content="",
        finish_reason="length",
        usage=Usage(input_tokens=5, output_tokens=2),
        provider=Provider.HUGGINGFACE,
        model="gemma-3-270m",
        route=_route(Provider.HUGGINGFACE),
    )
    first = chunk_to_message_chunk(body)
    final = chunk_to_message_chunk(last)
    assert first.content == "Hel"
    assert first.usage_metadata is None
    assert first.response_metadata == {}
    assert first.chunk_position is None
    assert final.content == ""
    assert final.chunk_position == "last"
    assert final.usage_metadata == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    assert final.response_metadata["provider"] == "huggingface"
    assert final.response_metadata["finish_reason"] == "length"

    merged = first + final
    assert isinstance(merged, AIMessageChunk)
    assert merged.content == "Hel"
    assert merged.usage_metadata == final.usage_metadata
    assert merged.response_metadata["model_name"] == "gemma-3-270m"


def test_streamed_tool_call_deltas_become_tool_call_chunks() -> None:
    chunk = ChatChunk(
        tool_call_deltas=[ToolCallDelta(index=0, id="c1", name="add", arguments='{"a": 1')],
        provider=Provider.OPENAI,
        model="m",
    )
    tail = ChatChunk(
        tool_call_deltas=[ToolCallDelta(index=0, arguments="}")],
        provider=Provider.OPENAI,
        model="m",
    )
    merged = chunk_to_message_chunk(chunk) + chunk_to_message_chunk(tail)
    assert merged.tool_calls == [{"id": "c1", "name": "add", "args": {"a": 1}, "type": "tool_call"}]


def test_overrides_contain_only_the_fields_that_were_set() -> None:
    assert routing_overrides() == {}
    assert routing_overrides(local_only=False) == {"model_preferences": {"local_only": False}}
    assert routing_overrides(
        fallback_order=["huggingface", "ollama"], local_first=True, local_only=True, timeout=12.5
    ) == {
        "providers": {"fallback": {"order": ["huggingface", "ollama"]}},
        "model_preferences": {"local_first": True, "local_only": True},
        "routing": {"total_timeout_seconds": 12.5},
    }


def test_request_params_keep_request_fields_drop_stream_and_reject_the_rest() -> None:
    assert request_params({"model": "ollama:x", "max_tokens": 3, "stream": True}) == {
        "model": "ollama:x",
        "max_tokens": 3,
    }
    with pytest.raises(TypeError, match=r"'top_kk' \(did you mean 'top_k'\?\)"):
        request_params({"top_kk": 3})
