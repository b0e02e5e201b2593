"""OpenAI chat-completions wire format: request bodies out, responses and chunks in.

Shared by every backend that speaks it: the HTTP client (OpenAI, OpenRouter, Ollama's ``/v1``,
llama-cpp-python's server) and the in-process llama-cpp-python backend, whose
``create_chat_completion`` returns the same shapes.
"""

from __future__ import annotations

import json
from typing import Any

from forge_core._types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    RouteTrail,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["build_body", "message_to_wire", "parse_chunk", "parse_completion", "parse_usage"]


def message_to_wire(message: Message) -> dict[str, Any]:
    """One `Message` as an OpenAI chat message."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    if message.name is not None and message.role != "tool":
        wire["name"] = message.name
    return wire


def build_body(
    request: ChatRequest,
    model: str,
    *,
    stream: bool,
    max_tokens_field: str = "max_tokens",
    include_usage: bool = True,
) -> dict[str, Any]:
    """The JSON body of a chat-completions request.

    ``max_tokens_field`` is ``max_completion_tokens`` for OpenAI itself; OpenAI-compatible
    servers (llama-cpp-python, Ollama) only honour the legacy ``max_tokens``.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_to_wire(message) for message in request.messages],
        "stream": stream,
    }
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = request.tools
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.response_format is not None:
        body["response_format"] = request.response_format
    return body


def parse_usage(data: Any) -> Usage | None:
    """``usage`` of a response or chunk, or None when absent."""
    if not isinstance(data, dict):
        return None
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
    )


def _parse_arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("tool call arguments are not a JSON object")
    return parsed


def parse_completion(data: dict[str, Any], provider: Provider, model: str) -> ChatResponse:
    """A non-streamed chat completion. Raises ``KeyError``/``ValueError`` on a malformed body."""
    choice = data["choices"][0]
    message = choice["message"]
    tool_calls = [
        ToolCall(
            id=call.get("id") or f"call_{index}",
            name=call["function"]["name"],
            arguments=_parse_arguments(call["function"].get("arguments")),
        )
        for index, call in enumerate(message.get("tool_calls") or [])
    ]
    return ChatResponse(
        content=message.get("content"),
        tool_calls=tool_calls,
        finish_reason=choice.get("finish_reason"),
        usage=parse_usage(data.get("usage")),
        provider=provider,
        model=str(data.get("model") or model),
        route=RouteTrail(),
    )


def parse_chunk(data: dict[str, Any], provider: Provider, model: str) -> ChatChunk:
    """One streamed chunk. The usage-only last chunk has ``choices: []``."""
    choices = data.get("choices") or []
    content = ""
    deltas: list[ToolCallDelta] = []
    finish_reason = None
    if choices:
        choice = choices[0]
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        for fragment in delta.get("tool_calls") or []:
            function = fragment.get("function") or {}
            deltas.append(
                ToolCallDelta(
                    index=int(fragment.get("index", 0)),
                    id=fragment.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments") or "",
                )
            )
        finish_reason = choice.get("finish_reason")
    return ChatChunk(
        content=content,
        tool_call_deltas=deltas,
        finish_reason=finish_reason,
        usage=parse_usage(data.get("usage")),
        provider=provider,
        model=str(data.get("model") or model),
    )
