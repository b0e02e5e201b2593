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
    "reasoning_parts_from",
    "request_params",
    "response_metadata",
    "response_to_message",
    "tool_choice_to_openai",
    "usage_to_metadata",
    "with_model_kwargs_as_extra_body",
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


#: Content blocks of an AIMessage that are not its text: those that repeat its ``tool_calls``
#: (Anthropic's ``tool_use``, LangChain's standard ``tool_call``), which is what forge sends,
#: and its reasoning (`reasoning_parts_from`).
_NOT_TEXT_BLOCKS = frozenset(
    {"tool_use", "tool_call", "reasoning", "thinking", "redacted_thinking", "non_standard"}
)


def _without_tool_call_blocks(
    content: str | list[str | dict[str, Any]],
) -> str | list[str | dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [
        block
        for block in content
        if not (isinstance(block, Mapping) and block.get("type") in _NOT_TEXT_BLOCKS)
    ]


def reasoning_parts_from(message: AIMessage) -> list[forge_core.ReasoningPart]:
    """An AIMessage's reasoning as `forge_core.ReasoningPart`s, from whichever shape holds it:
    ``additional_kwargs["reasoning_parts"]`` (ForgeChat's, exact), v1 ``reasoning`` content
    blocks (a ``signature`` and ``provider`` in their ``extras``), ChatAnthropic's
    ``thinking`` / ``redacted_thinking`` blocks (also as v1 ``non_standard`` blocks), else
    ``additional_kwargs["reasoning_content"]`` (unsigned text). A signature or redacted
    data with no provider named is Anthropic's (the one provider that signs thinking)."""
    kept = message.additional_kwargs.get("reasoning_parts")
    if kept:
        return [forge_core.ReasoningPart.model_validate(part) for part in kept]
    parts: list[forge_core.ReasoningPart] = []
    if isinstance(message.content, list):
        for block in message.content:
            if isinstance(block, Mapping):
                part = _reasoning_part_of(block)
                if part is not None:
                    parts.append(part)
    if not parts and message.additional_kwargs.get("reasoning_content"):
        parts.append(
            forge_core.ReasoningPart(text=str(message.additional_kwargs["reasoning_content"]))
        )
    return parts


def _reasoning_part_of(block: Mapping[str, Any]) -> forge_core.ReasoningPart | None:
    kind = block.get("type")
    if kind == "non_standard" and isinstance(block.get("value"), Mapping):
        block, kind = block["value"], block["value"].get("type")
    if kind == "reasoning":
        extras = block.get("extras") or {}
        return _signed_part(
            str(block.get("reasoning") or ""), extras.get("signature"), extras.get("provider")
        )
    if kind == "thinking":
        return _signed_part(str(block.get("thinking") or ""), block.get("signature"), None)
    if kind == "redacted_thinking":
        return forge_core.ReasoningPart(redacted=str(block["data"]))
    return None


def _signed_part(text: str, signature: Any, provider: Any) -> forge_core.ReasoningPart:
    """A signed part with no provider named is Anthropic's (`forge_core.ReasoningPart`)."""
    return forge_core.ReasoningPart(
        text=text, signature=str(signature) if signature else None, provider=provider
    )


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
        reasoning = reasoning_parts_from(message)
        if not reasoning:
            return forge_core.Message(
                role="assistant", content=content, tool_calls=calls, name=name
            )
        rest: list[forge_core.ContentPart] = (
            content
            if isinstance(content, list)
            else [forge_core.TextPart(text=content)]
            if content
            else []
        )
        return forge_core.Message(
            role="assistant", content=[*reasoning, *rest], tool_calls=calls, name=name
        )
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


def with_model_kwargs_as_extra_body(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``model_kwargs`` (ChatOpenAI's name for raw request fields) given as
    ``extra_body``, forge's one name for them. Refused (ValueError): both at once, and a key
    that is a forge option (``model_kwargs={"top_p": 0.5}``: set ``top_p`` itself, which
    every provider receives under its own name, as ChatOpenAI asks too)."""
    if "model_kwargs" not in params:
        return dict(params)
    rest = {key: value for key, value in params.items() if key != "model_kwargs"}
    raw = params["model_kwargs"]
    if raw is None:
        return rest
    if rest.get("extra_body") is not None:
        raise ValueError(
            "ForgeChat: model_kwargs and extra_body are two names for the same raw request "
            "fields; give one"
        )
    if not isinstance(raw, Mapping):
        raise ValueError(f"ForgeChat: model_kwargs must be a dict, not {type(raw).__name__}")
    options = sorted(key for key in raw if key in REQUEST_PARAMS)
    if options:
        raise ValueError(
            f"ForgeChat: {', '.join(options)} in model_kwargs: forge has them as options; set "
            "them directly (ForgeChat(name=...), .bind(name=...) or per call) so each provider "
            "gets them under its own name"
        )
    rest["extra_body"] = dict(raw)
    return rest


def request_params(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The per-call `forge_core.ChatRequest` fields in ``kwargs`` (``model_kwargs`` as
    ``extra_body``: `with_model_kwargs_as_extra_body`); unknown keys raise TypeError."""
    if "model_kwargs" in kwargs:
        try:
            kwargs = with_model_kwargs_as_extra_body(kwargs)
        except ValueError as exc:
            raise TypeError(str(exc)) from None
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
    """``response_metadata``: who served (``provider``, ``model_name``) and the route.

    ``model_provider`` is ``forge``: it names the shape of the message for LangChain's
    ``content_blocks`` (which picks a translator by it), and a ForgeChat message is in forge's
    shape whoever served it (text, ``tool_calls``, ``reasoning_content``); LangChain's OpenAI
    and Anthropic translators would drop its reasoning and tool calls."""
    metadata: dict[str, Any] = {
        "model_name": model,
        "model_provider": "forge",
        "provider": provider.value,
        "finish_reason": finish_reason,
    }
    if route is not None:
        metadata["route"] = route.model_dump(mode="json")
    return metadata


def response_to_message(
    response: forge_core.ChatResponse, output_version: str | None = None
) -> AIMessage:
    """A complete forge answer as an `AIMessage` (content, reasoning, tool calls, usage,
    route, and the token log probabilities in ``response_metadata["logprobs"]["content"]`` as
    ChatOpenAI has them).

    The reasoning, by default (``output_version`` v0), is ``additional_kwargs
    ["reasoning_content"]`` (the text, where LangChain's partner packages put it;
    ``content_blocks`` shows it as a ``reasoning`` block) and, when the provider signed it,
    ``additional_kwargs["reasoning_parts"]`` (each part with its signature or redacted data,
    what a later turn sends back). With ``output_version="v1"`` the content is v1 blocks:
    ``reasoning`` (a signature and its provider in ``extras``; a redacted part as
    ChatAnthropic's ``redacted_thinking`` in a ``non_standard`` block), ``text``, then
    ``tool_call``."""
    metadata = response_metadata(
        provider=response.provider,
        model=response.model,
        finish_reason=response.finish_reason,
        route=response.route,
    )
    if response.logprobs is not None:
        metadata["logprobs"] = {"content": response.logprobs}
    calls = [_tool_call_from_forge(call) for call in response.tool_calls]
    content: str | list[str | dict[str, Any]] = response.content or ""
    kwargs = _reasoning_kwargs(response.reasoning, response.reasoning_parts)
    if output_version == "v1":
        metadata["output_version"] = "v1"
        content = [_v1_block(part) for part in response.reasoning_parts]
        if response.content:
            content.append({"type": "text", "text": response.content})
        content += [{"type": "tool_call", **call} for call in calls]
        kwargs.pop("reasoning_content", None)
    return AIMessage(
        content=content,
        additional_kwargs=kwargs,
        tool_calls=calls,
        usage_metadata=usage_to_metadata(response.usage) if response.usage else None,
        response_metadata=metadata,
    )


def _reasoning_kwargs(
    reasoning: str | None, parts: Sequence[forge_core.ReasoningPart] = ()
) -> dict[str, Any]:
    """``additional_kwargs`` carrying the model's thinking as ``reasoning_content`` and, when
    the provider signed it, the parts whole as ``reasoning_parts``."""
    kwargs: dict[str, Any] = {"reasoning_content": reasoning} if reasoning else {}
    if any(part.signature is not None or part.redacted is not None for part in parts):
        kwargs["reasoning_parts"] = [
            part.model_dump(mode="json", exclude_none=True) for part in parts
        ]
    return kwargs


def _v1_block(part: forge_core.ReasoningPart) -> dict[str, Any]:
    """A reasoning part as a LangChain v1 block (`reasoning_parts_from` reads it back)."""
    if part.redacted is not None:
        return {
            "type": "non_standard",
            "value": {"type": "redacted_thinking", "data": part.redacted},
        }
    block: dict[str, Any] = {"type": "reasoning", "reasoning": part.text}
    if part.signature is not None:
        extras: dict[str, Any] = {"signature": part.signature}
        if part.provider is not None:
            extras["provider"] = part.provider.value
        block["extras"] = extras
    return block


def chunk_to_message_chunk(
    chunk: forge_core.ChatChunk, named_calls: set[int] | None = None
) -> AIMessageChunk:
    """One forge chunk as an `AIMessageChunk`.

    forge marks its last chunk by setting ``route``; only that chunk gets ``usage_metadata``,
    ``response_metadata``, ``chunk_position="last"`` and the signed reasoning parts whole
    (``additional_kwargs["reasoning_parts"]``), so merging the chunks of a stream yields each
    of them once; the thinking's pieces come before the text as
    ``additional_kwargs["reasoning_content"]``.

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
        additional_kwargs=_reasoning_kwargs(chunk.reasoning, chunk.reasoning_parts),
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
