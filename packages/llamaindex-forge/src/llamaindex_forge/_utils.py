"""Conversions between LlamaIndex types and forge_core types (no routing happens here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import forge_core
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    MessageRole,
    TextBlock,
)

__all__ = [
    "REQUEST_PARAMS",
    "chat_response",
    "request_params",
    "served_by",
    "stream_response",
    "to_forge_message",
    "to_forge_messages",
    "usage_dict",
]

_Role = Literal["system", "user", "assistant", "tool"]

_ROLES: dict[MessageRole, _Role] = {
    MessageRole.SYSTEM: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.TOOL: "tool",
}

#: `forge_core.ChatRequest` fields a caller may set per call (``llm.chat(msgs, stop=[...])``).
#: Tools are not accepted yet: tool calling arrives with ``FunctionCallingLLM`` support.
REQUEST_PARAMS = frozenset(
    {"model", "temperature", "max_tokens", "stop", "local_only", "response_format"}
)


# -- requests ---------------------------------------------------------------------------------


def to_forge_message(message: ChatMessage) -> forge_core.Message:
    """One LlamaIndex `ChatMessage` as a `forge_core.Message`.

    Text blocks are joined with newlines (as ``ChatMessage.content`` does). A ``tool`` message
    needs ``additional_kwargs["tool_call_id"]``. Any other block type or role raises ValueError.
    """
    role = _ROLES.get(message.role)
    if role is None:
        supported = ", ".join(r.value for r in _ROLES)
        raise ValueError(
            f"ForgeLLM: message role {message.role.value!r} is not supported "
            f"(supported: {supported})"
        )
    texts: list[str] = []
    for block in message.blocks:
        if not isinstance(block, TextBlock):
            raise ValueError(
                f"ForgeLLM: {block.block_type!r} content blocks are not supported "
                f"(in a {role} message); only text blocks are"
            )
        texts.append(block.text)
    if message.additional_kwargs.get("tool_calls"):
        raise ValueError("ForgeLLM: assistant messages carrying tool_calls are not supported yet")
    tool_call_id: str | None = None
    if role == "tool":
        raw_id = message.additional_kwargs.get("tool_call_id")
        if not isinstance(raw_id, str) or not raw_id:
            raise ValueError(
                "ForgeLLM: a tool message needs additional_kwargs['tool_call_id'] "
                "(the id of the tool call it answers)"
            )
        tool_call_id = raw_id
    name = message.additional_kwargs.get("name")
    return forge_core.Message(
        role=role,
        content="\n".join(texts) if texts else None,
        tool_call_id=tool_call_id,
        name=name if isinstance(name, str) else None,
    )


def to_forge_messages(messages: Sequence[ChatMessage]) -> list[forge_core.Message]:
    """A LlamaIndex conversation as forge messages, in order."""
    return [to_forge_message(message) for message in messages]


def request_params(defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The `forge_core.ChatRequest` parameters of one call.

    ``defaults`` come from the LLM's fields (None means "not set"); ``kwargs`` are the per-call
    keyword arguments and win. An unknown keyword raises TypeError rather than being dropped.
    """
    unknown = sorted(set(kwargs) - REQUEST_PARAMS)
    if unknown:
        raise TypeError(
            f"ForgeLLM: unsupported keyword argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(REQUEST_PARAMS))}"
        )
    merged = {key: value for key, value in defaults.items() if value is not None}
    merged.update(kwargs)
    return merged


# -- responses --------------------------------------------------------------------------------


def usage_dict(usage: forge_core.Usage | None) -> dict[str, int] | None:
    """Token counts in the keys LlamaIndex's token counter reads, or None when unknown."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def served_by(provider: forge_core.Provider, model: str) -> dict[str, Any]:
    """The ``provider`` / ``model`` pair put on every response's message."""
    return {"provider": provider.value, "model": model}


def _raw(
    provider: forge_core.Provider,
    model: str,
    *,
    finish_reason: str | None,
    usage: forge_core.Usage | None,
    route: forge_core.RouteTrail | None,
) -> dict[str, Any]:
    return {
        **served_by(provider, model),
        "finish_reason": finish_reason,
        "usage": usage_dict(usage),
        "route": route.model_dump(mode="json") if route is not None else None,
    }


def chat_response(response: forge_core.ChatResponse) -> ChatResponse:
    """A complete forge answer as a LlamaIndex `ChatResponse` (route and usage in ``raw``)."""
    return ChatResponse(
        message=ChatMessage(
            role=MessageRole.ASSISTANT,
            content=response.content or "",
            additional_kwargs=served_by(response.provider, response.model),
        ),
        raw=_raw(
            response.provider,
            response.model,
            finish_reason=response.finish_reason,
            usage=response.usage,
            route=response.route,
        ),
    )


def stream_response(chunk: forge_core.ChatChunk, text: str) -> ChatResponse:
    """One streamed piece: ``delta`` is the chunk's text, the message holds ``text`` so far.

    Only forge's last chunk has a route; its ``raw`` then carries the usage and the route too.
    """
    return ChatResponse(
        message=ChatMessage(
            role=MessageRole.ASSISTANT,
            content=text,
            additional_kwargs=served_by(chunk.provider, chunk.model),
        ),
        delta=chunk.content,
        raw=_raw(
            chunk.provider,
            chunk.model,
            finish_reason=chunk.finish_reason,
            usage=chunk.usage,
            route=chunk.route,
        ),
    )
