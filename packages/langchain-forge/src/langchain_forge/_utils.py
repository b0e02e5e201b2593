"""Conversions between LangChain types and forge_core types (no routing happens here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import forge_core
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import ToolCall, ToolCallChunk, tool_call, tool_call_chunk

from langchain_forge._content import content_to_forge, parts_to_content

__all__ = [
    "REQUEST_PARAMS",
    "chunk_to_message_chunk",
    "message_from_forge",
    "message_to_forge",
    "messages_to_forge",
    "request_params",
    "response_metadata",
    "response_to_message",
    "tool_choice_to_openai",
    "usage_to_metadata",
]

#: `forge_core.ChatRequest` fields a caller may set per call, e.g. ``invoke(..., model=...)``
#: (forge-core defines them once). ``tools``, ``tool_choice`` and ``response_format`` (OpenAI
#: shapes) are what ``bind_tools`` / ``with_structured_output`` bind; LangChain's own ``stop``
#: argument wins over a ``stop`` keyword.
REQUEST_PARAMS = forge_core.CALL_PARAMETERS

#: Keyword arguments LangChain itself may pass down to ``_generate``/``_stream``; ignored here.
_LANGCHAIN_KWARGS = frozenset({"stream"})

# Whether this langchain-core's AIMessageChunk has ``chunk_position`` (added in 1.x).
_HAS_CHUNK_POSITION = "chunk_position" in AIMessageChunk.model_fields

_CHAT_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}


# -- requests ---------------------------------------------------------------------------------


#: Content blocks that repeat an AIMessage's ``tool_calls`` (Anthropic's ``tool_use``,
#: LangChain's standard ``tool_call``); ``tool_calls`` is what forge sends.
_TOOL_CALL_BLOCKS = frozenset({"tool_use", "tool_call"})


def _without_tool_call_blocks(
    content: str | list[str | dict[str, Any]],
) -> str | list[str | dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [
        block
        for block in content
        if not (isinstance(block, Mapping) and block.get("type") in _TOOL_CALL_BLOCKS)
    ]


def _tool_call_to_forge(call: ToolCall, index: int) -> forge_core.ToolCall:
    call_id = call.get("id")
    if not call_id:
        raise ValueError(
            f"ForgeChat: tool call {index} ({call['name']!r}) of an AIMessage has no id; "
            "forge needs an id to pair the call with its ToolMessage"
        )
    return forge_core.ToolCall(id=call_id, name=call["name"], arguments=dict(call["args"]))


def message_to_forge(message: BaseMessage) -> forge_core.Message:
    """One LangChain message as a `forge_core.Message`.

    ``SystemMessage`` -> system, ``HumanMessage`` -> user, ``AIMessage`` -> assistant (its
    ``tool_calls`` become `forge_core.ToolCall`), ``ToolMessage`` -> tool (``tool_call_id``),
    ``ChatMessage`` with role system/user/assistant -> that role. Content blocks become
    ordered parts (`content_to_forge`). Anything else raises `ValueError`.
    """
    name = message.name
    if isinstance(message, SystemMessage):
        content = content_to_forge(message.content, where="SystemMessage")
        return forge_core.Message(role="system", content=content, name=name)
    if isinstance(message, HumanMessage):
        content = content_to_forge(message.content, where="HumanMessage")
        return forge_core.Message(role="user", content=content, name=name)
    if isinstance(message, AIMessage):
        if message.invalid_tool_calls:
            raise ValueError(
                "ForgeChat: an AIMessage with invalid_tool_calls cannot be sent to forge "
                "(their arguments are not valid JSON objects)"
            )
        content = content_to_forge(_without_tool_call_blocks(message.content), where="AIMessage")
        calls = [_tool_call_to_forge(call, i) for i, call in enumerate(message.tool_calls)]
        return forge_core.Message(role="assistant", content=content, tool_calls=calls, name=name)
    if isinstance(message, ToolMessage):
        content = content_to_forge(message.content, where="ToolMessage")
        return forge_core.Message(
            role="tool", content=content, tool_call_id=message.tool_call_id, name=name
        )
    if isinstance(message, ChatMessage) and message.role in _CHAT_ROLES:
        content = content_to_forge(message.content, where=f"ChatMessage({message.role})")
        return forge_core.Message(role=_CHAT_ROLES[message.role], content=content, name=name)
    detail = f" with role {message.role!r}" if isinstance(message, ChatMessage) else ""
    raise ValueError(
        f"ForgeChat: cannot send a {type(message).__name__}{detail} to forge; supported: "
        "SystemMessage, HumanMessage, AIMessage, ToolMessage, and ChatMessage with role "
        "system/user/assistant"
    )


def messages_to_forge(messages: Sequence[BaseMessage]) -> list[forge_core.Message]:
    """Every message converted with `message_to_forge`, in order."""
    return [message_to_forge(message) for message in messages]


def message_from_forge(message: forge_core.Message) -> BaseMessage:
    """A `forge_core.Message` as the LangChain message `message_to_forge` would turn back."""
    content = parts_to_content(message)
    if message.role == "system":
        return SystemMessage(content=content, name=message.name)
    if message.role == "user":
        return HumanMessage(content=content, name=message.name)
    if message.role == "assistant":
        return AIMessage(
            content=content,
            tool_calls=[_tool_call_from_forge(call) for call in message.tool_calls],
            name=message.name,
        )
    return ToolMessage(content=content, tool_call_id=message.tool_call_id or "", name=message.name)


def request_params(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The per-call `forge_core.ChatRequest` fields in ``kwargs``; unknown keys raise TypeError."""
    unknown = set(kwargs) - REQUEST_PARAMS - _LANGCHAIN_KWARGS
    if unknown:
        raise TypeError(
            forge_core.unknown_options("ForgeChat", unknown, REQUEST_PARAMS, what="per-call option")
        )
    return {key: value for key, value in kwargs.items() if key in REQUEST_PARAMS}


def tool_choice_to_openai(
    tool_choice: str | bool | dict[str, Any] | None, tools: Sequence[Mapping[str, Any]]
) -> str | dict[str, Any] | None:
    """LangChain's ``tool_choice`` as the OpenAI shape `forge_core.ChatRequest` takes.

    forge-core decides what each value means (`forge_core.resolve_tool_choice`, shared with
    llamaindex-forge); this only names ForgeChat in the error.
    """
    try:
        return forge_core.resolve_tool_choice(tool_choice, tools)
    except ValueError as exc:
        raise ValueError(f"ForgeChat: {exc}") from None


# -- responses --------------------------------------------------------------------------------


def _tool_call_from_forge(call: forge_core.ToolCall) -> ToolCall:
    return tool_call(name=call.name, args=dict(call.arguments), id=call.id)


def _tool_call_chunk_from_forge(delta: forge_core.ToolCallDelta) -> ToolCallChunk:
    return tool_call_chunk(
        name=delta.name, args=delta.arguments or None, id=delta.id, index=delta.index
    )


def _name_once(delta: forge_core.ToolCallDelta, named_calls: set[int]) -> forge_core.ToolCallDelta:
    if delta.name is None:
        return delta
    if delta.index in named_calls:
        return delta.model_copy(update={"name": None})
    named_calls.add(delta.index)
    return delta


def usage_to_metadata(usage: forge_core.Usage) -> UsageMetadata:
    """forge `Usage` as LangChain ``usage_metadata``: ``input_token_details`` (``cache_read``,
    ``cache_creation``) and ``output_token_details`` (``reasoning``) when the provider reported
    them, as parts of the input and output counts (LangChain's meaning too)."""
    metadata = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cached_input_tokens or usage.cache_creation_input_tokens:
        details = InputTokenDetails()
        if usage.cached_input_tokens:
            details["cache_read"] = usage.cached_input_tokens
        if usage.cache_creation_input_tokens:
            details["cache_creation"] = usage.cache_creation_input_tokens
        metadata["input_token_details"] = details
    if usage.reasoning_tokens:
        metadata["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning_tokens)
    return metadata


def response_metadata(
    *,
    provider: forge_core.Provider,
    model: str,
    finish_reason: str | None,
    route: forge_core.RouteTrail | None,
) -> dict[str, Any]:
    """``response_metadata``: who served (``model_provider``, ``model_name``) and the route."""
    metadata: dict[str, Any] = {
        "model_name": model,
        "model_provider": provider.value,
        "finish_reason": finish_reason,
    }
    if route is not None:
        metadata["route"] = route.model_dump(mode="json")
    return metadata


def response_to_message(response: forge_core.ChatResponse) -> AIMessage:
    """A complete forge answer as an `AIMessage` (content, reasoning in
    ``additional_kwargs["reasoning_content"]``, tool calls, usage, route, and the token log
    probabilities in ``response_metadata["logprobs"]["content"]`` as ChatOpenAI has them)."""
    metadata = response_metadata(
        provider=response.provider,
        model=response.model,
        finish_reason=response.finish_reason,
        route=response.route,
    )
    if response.logprobs is not None:
        metadata["logprobs"] = {"content": response.logprobs}
    return AIMessage(
        content=response.content or "",
        additional_kwargs=_reasoning_kwargs(response.reasoning),
        tool_calls=[_tool_call_from_forge(call) for call in response.tool_calls],
        usage_metadata=usage_to_metadata(response.usage) if response.usage else None,
        response_metadata=metadata,
    )


def _reasoning_kwargs(reasoning: str | None) -> dict[str, Any]:
    """``additional_kwargs`` carrying the model's thinking as ``reasoning_content`` (where
    LangChain's partner packages put it; ``content_blocks`` reads it as a ``reasoning`` block
    for providers whose translator has no reasoning shape of its own)."""
    return {"reasoning_content": reasoning} if reasoning else {}


def chunk_to_message_chunk(
    chunk: forge_core.ChatChunk, named_calls: set[int] | None = None
) -> AIMessageChunk:
    """One forge chunk as an `AIMessageChunk`.

    forge marks its last chunk by setting ``route``; only that chunk gets ``usage_metadata``,
    ``response_metadata`` and ``chunk_position="last"``, so merging the chunks of a stream
    yields each of them once.

    ``named_calls`` (one set per stream) holds the indices of the tool calls whose name was
    already yielded: some servers repeat the name on every fragment, and LangChain's chunk
    merge would concatenate the repeats (``"JokeJoke"``), so only the first carries it.
    """
    deltas = chunk.tool_call_deltas
    if named_calls is not None:
        deltas = [_name_once(delta, named_calls) for delta in deltas]
    tool_call_chunks = [_tool_call_chunk_from_forge(delta) for delta in deltas]
    if chunk.route is None:
        if chunk.reasoning or chunk.logprobs is not None:
            return AIMessageChunk(
                content=chunk.content,
                additional_kwargs=_reasoning_kwargs(chunk.reasoning),
                response_metadata=(
                    {"logprobs": {"content": chunk.logprobs}} if chunk.logprobs is not None else {}
                ),
                tool_call_chunks=tool_call_chunks,
            )
        return AIMessageChunk(content=chunk.content, tool_call_chunks=tool_call_chunks)
    extra: dict[str, Any] = {"chunk_position": "last"} if _HAS_CHUNK_POSITION else {}
    return AIMessageChunk(
        content=chunk.content,
        tool_call_chunks=tool_call_chunks,
        usage_metadata=usage_to_metadata(chunk.usage) if chunk.usage else None,
        response_metadata=response_metadata(
            provider=chunk.provider,
            model=chunk.model,
            finish_reason=chunk.finish_reason,
            route=chunk.route,
        ),
        **extra,
    )
