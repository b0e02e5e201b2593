"""Conversions between LlamaIndex types and forge_core types (no routing happens here)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import forge_core
from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    LogProb,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from llamaindex_forge._content import MEDIA_BLOCKS, cache_point, media_part

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = [
    "REQUEST_PARAMS",
    "ToolCallAssembler",
    "chat_response",
    "request_params",
    "served_by",
    "stream_response",
    "to_forge_message",
    "to_forge_messages",
    "tool_calls_from_message",
    "tool_calls_to_wire",
    "tool_choice_param",
    "tool_specs",
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
REQUEST_PARAMS = forge_core.CALL_PARAMETERS

# -- requests ---------------------------------------------------------------------------------


def to_forge_message(message: ChatMessage) -> forge_core.Message:
    """One LlamaIndex `ChatMessage` as a `forge_core.Message`.

    Text blocks are joined with newlines (as ``ChatMessage.content`` does). An assistant's tool
    calls come from its `ToolCallBlock`s or, failing those, ``additional_kwargs["tool_calls"]``
    (OpenAI shape, as `ForgeLLM` itself puts them there). A ``tool`` message needs
    ``additional_kwargs["tool_call_id"]``. Image, audio and document blocks become ordered
    parts (`media_part`); a `CachePoint` marks the part before it. Any other block type or
    role raises ValueError.
    """
    role = _ROLES.get(message.role)
    if role is None:
        supported = ", ".join(r.value for r in _ROLES)
        raise ValueError(
            f"ForgeLLM: message role {message.role.value!r} is not supported "
            f"(supported: {supported})"
        )
    parts: list[forge_core.ContentPart] = []
    call_blocks: list[ToolCallBlock] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append(forge_core.TextPart(text=block.text))
        elif isinstance(block, MEDIA_BLOCKS):
            parts.append(media_part(block, role))
        elif isinstance(block, CachePoint):
            cache_point(parts, block, role)
        elif isinstance(block, ToolCallBlock) and role == "assistant":
            call_blocks.append(block)
        elif isinstance(block, ThinkingBlock) and role == "assistant":
            parts.append(_reasoning_part(block))
        else:
            raise ValueError(
                f"ForgeLLM: {block.block_type!r} content blocks are not supported "
                f"(in a {role} message); text, image, audio, document, cache-point and "
                "(on assistant messages) tool-call and thinking blocks are"
            )
    tool_calls: list[forge_core.ToolCall] = []
    if call_blocks:
        tool_calls = [_tool_call_from_block(block, i) for i, block in enumerate(call_blocks)]
    elif message.additional_kwargs.get("tool_calls"):
        if role != "assistant":
            raise ValueError(f"ForgeLLM: a {role} message cannot carry tool_calls")
        tool_calls = _tool_calls_from_wire(message.additional_kwargs["tool_calls"])
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
        content=_content(parts),
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        name=name if isinstance(name, str) else None,
    )


def _reasoning_part(block: ThinkingBlock) -> forge_core.ReasoningPart:
    """A `ThinkingBlock` as a `forge_core.ReasoningPart`: ``additional_information`` may hold
    the ``signature``, ``redacted`` data and ``provider`` (as `ForgeLLM` puts them there); a
    signature or redacted data with no provider named is Anthropic's (`forge_core`'s rule)."""
    info = block.additional_information or {}
    return forge_core.ReasoningPart(
        text=block.content or "",
        signature=info.get("signature"),
        redacted=info.get("redacted"),
        provider=info.get("provider"),
    )


def _thinking_block(part: forge_core.ReasoningPart) -> ThinkingBlock:
    info = part.model_dump(mode="json", include={"signature", "redacted", "provider"})
    return ThinkingBlock(
        content=part.text, additional_information={k: v for k, v in info.items() if v is not None}
    )


def _content(parts: list[forge_core.ContentPart]) -> str | list[forge_core.ContentPart] | None:
    """Text only: the texts joined with newlines (as ``ChatMessage.content`` does); else the
    parts in order."""
    texts = [
        part.text
        for part in parts
        if isinstance(part, forge_core.TextPart) and part.cache_control is None
    ]
    if len(texts) == len(parts):
        return "\n".join(texts) if texts else None
    return parts


def to_forge_messages(messages: Sequence[ChatMessage]) -> list[forge_core.Message]:
    """A LlamaIndex conversation as forge messages, in order."""
    return [to_forge_message(message) for message in messages]


def _arguments_dict(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    raise ValueError(f"ForgeLLM: the arguments of {where} are not a JSON object: {raw!r}")


def _tool_call_from_block(block: ToolCallBlock, index: int) -> forge_core.ToolCall:
    where = f"tool call {block.tool_name!r}"
    return forge_core.ToolCall(
        id=block.tool_call_id or f"call_{index}",
        name=block.tool_name,
        arguments=_arguments_dict(block.tool_kwargs, where),
    )


def _tool_calls_from_wire(raw: Any) -> list[forge_core.ToolCall]:
    """``additional_kwargs["tool_calls"]``: OpenAI-shaped dicts (``id``, ``function``)."""
    if not isinstance(raw, list):
        raise ValueError("ForgeLLM: additional_kwargs['tool_calls'] must be a list")
    calls = []
    for index, item in enumerate(raw):
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping) or not function.get("name"):
            raise ValueError(
                "ForgeLLM: each additional_kwargs['tool_calls'] entry needs "
                f"function.name (OpenAI shape), got {item!r}"
            )
        name = str(function["name"])
        calls.append(
            forge_core.ToolCall(
                id=str(item.get("id") or f"call_{index}"),
                name=name,
                arguments=_arguments_dict(function.get("arguments"), f"tool call {name!r}"),
            )
        )
    return calls


def tool_specs(tools: Iterable[BaseTool]) -> list[dict[str, Any]]:
    """LlamaIndex tools as OpenAI ``tools`` entries (forge translates them per provider)."""
    return [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]


def tool_choice_param(
    tool_choice: str | Mapping[str, Any] | None,
    tools: Sequence[Mapping[str, Any]],
    *,
    tool_required: bool,
) -> str | dict[str, Any] | None:
    """LlamaIndex's ``tool_choice`` / ``tool_required`` as an OpenAI ``tool_choice``.

    With no choice, ``tool_required`` means "some tool must be called"; forge-core decides
    what each value means (`forge_core.resolve_tool_choice`, shared with langchain-forge).
    """
    choice: str | bool | Mapping[str, Any] | None = tool_choice
    if choice is None:
        choice = tool_required
    try:
        return forge_core.resolve_tool_choice(choice, tools)
    except ValueError as exc:
        raise ValueError(f"ForgeLLM: {exc}") from None


def request_params(defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The `forge_core.ChatRequest` parameters of one call.

    ``defaults`` come from the LLM's fields (None means "not set"); ``kwargs`` are the per-call
    keyword arguments and win. An unknown keyword raises TypeError rather than being dropped.
    """
    unknown = set(kwargs) - REQUEST_PARAMS
    if unknown:
        raise TypeError(
            forge_core.unknown_options("ForgeLLM", unknown, REQUEST_PARAMS, what="keyword")
        )
    merged = {key: value for key, value in defaults.items() if value is not None}
    merged.update(kwargs)
    return merged


# -- responses --------------------------------------------------------------------------------


def usage_dict(usage: forge_core.Usage | None) -> dict[str, int] | None:
    """Token counts in the keys LlamaIndex's token counter reads, or None when unknown; with
    ``cached_input_tokens``, ``cache_creation_input_tokens`` and ``reasoning_tokens`` (parts of
    the input and output counts) when the provider reported them."""
    if usage is None:
        return None
    counts = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens:
        counts["cached_input_tokens"] = usage.cached_input_tokens
    if usage.cache_creation_input_tokens:
        counts["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
    if usage.reasoning_tokens:
        counts["reasoning_tokens"] = usage.reasoning_tokens
    return counts


def served_by(provider: forge_core.Provider, model: str) -> dict[str, Any]:
    """The ``provider`` / ``model`` pair put on every response's message."""
    return {"provider": provider.value, "model": model}


def tool_calls_to_wire(calls: Iterable[forge_core.ToolCall]) -> list[dict[str, Any]]:
    """Tool calls in the OpenAI shape kept in ``additional_kwargs["tool_calls"]``."""
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
        }
        for call in calls
    ]


def _message_kwargs(
    provider: forge_core.Provider, model: str, tool_calls: list[dict[str, Any]]
) -> dict[str, Any]:
    kwargs = served_by(provider, model)
    if tool_calls:
        kwargs["tool_calls"] = tool_calls
    return kwargs


def tool_calls_from_message(message: ChatMessage, *, partial: bool = False) -> list[ToolSelection]:
    """The tool calls on a `ForgeLLM` answer, as LlamaIndex `ToolSelection`s with real ids.

    ``partial``: arguments still being streamed may not parse yet; they read as ``{}``.
    """
    selections = []
    for item in message.additional_kwargs.get("tool_calls") or []:
        function = item["function"]
        try:
            kwargs = _arguments_dict(function.get("arguments"), f"tool call {function['name']!r}")
        except ValueError:
            if not partial:
                raise
            kwargs = {}
        selections.append(
            ToolSelection(tool_id=item["id"], tool_name=function["name"], tool_kwargs=kwargs)
        )
    return selections


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
    """A complete forge answer as a LlamaIndex `ChatResponse` (route and usage in ``raw``).

    Tool calls go to ``message.additional_kwargs["tool_calls"]`` in the OpenAI shape, with the
    ids the provider gave them; the model's thinking, where the provider returned it, is one
    `ThinkingBlock` per reasoning part before the text, a signature, redacted data and the
    provider that made them in its ``additional_information`` (what a later turn sends back).
    """
    return ChatResponse(
        logprobs=_logprobs(response.logprobs),
        message=_assistant_message(
            response.content or "",
            response.reasoning_parts,
            _message_kwargs(
                response.provider, response.model, tool_calls_to_wire(response.tool_calls)
            ),
        ),
        raw=_raw(
            response.provider,
            response.model,
            finish_reason=response.finish_reason,
            usage=response.usage,
            route=response.route,
        ),
    )


class ToolCallAssembler(forge_core.ToolCallAccumulator):
    """`forge_core.ToolCallAccumulator` (which joins streamed fragments, by index only) with
    the calls so far in the OpenAI shape LlamaIndex keeps in ``additional_kwargs``."""

    def wire(self) -> list[dict[str, Any]]:
        """The calls so far in the OpenAI shape; ``arguments`` is the JSON text received."""
        return [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name or "", "arguments": call.arguments},
            }
            for call in self.partial()
        ]


def _logprobs(tokens: list[dict[str, Any]] | None) -> list[list[LogProb]] | None:
    """forge's (OpenAI-shaped) token log probabilities as LlamaIndex's: per token, the token
    chosen, then its other alternatives (``top_logprobs``)."""
    if tokens is None:
        return None
    return [
        [
            LogProb(token=entry["token"], logprob=entry["logprob"], bytes=entry.get("bytes") or [])
            for entry in (
                token,
                *(
                    other
                    for other in token.get("top_logprobs") or ()
                    if other.get("token") != token["token"]
                ),
            )
        ]
        for token in tokens
    ]


def _assistant_message(
    text: str, reasoning: Sequence[forge_core.ReasoningPart], additional_kwargs: dict[str, Any]
) -> ChatMessage:
    """An assistant message of ``text``, after a `ThinkingBlock` per reasoning part."""
    if not reasoning:
        return ChatMessage(
            role=MessageRole.ASSISTANT, content=text, additional_kwargs=additional_kwargs
        )
    return ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[*(_thinking_block(part) for part in reasoning), TextBlock(text=text)],
        additional_kwargs=additional_kwargs,
    )


def stream_response(
    chunk: forge_core.ChatChunk,
    text: str,
    tool_calls: list[dict[str, Any]] | None = None,
    thinking: str = "",
) -> ChatResponse:
    """One streamed piece: ``delta`` is the chunk's text, the message holds ``text`` so far.

    ``tool_calls`` (from a `ToolCallAssembler`) are the calls assembled so far. Only forge's
    last chunk has a route; its ``raw`` then carries the usage and the route too. ``thinking``
    is the model's thinking so far (a `ThinkingBlock` before the text; on the last response
    one per reasoning part, whole, signatures included); the chunk's own piece of it is
    ``additional_kwargs["thinking_delta"]``, as LlamaIndex's Ollama integration has it.
    """
    kwargs = _message_kwargs(chunk.provider, chunk.model, tool_calls or [])
    if chunk.reasoning:
        kwargs["thinking_delta"] = chunk.reasoning
    parts = chunk.reasoning_parts or ([forge_core.ReasoningPart(text=thinking)] if thinking else [])
    return ChatResponse(
        logprobs=_logprobs(chunk.logprobs),
        message=_assistant_message(text, parts, kwargs),
        delta=chunk.content,
        raw=_raw(
            chunk.provider,
            chunk.model,
            finish_reason=chunk.finish_reason,
            usage=chunk.usage,
            route=chunk.route,
        ),
    )
