"""Tool calls emulated through schema-constrained output, for servers that can constrain an
answer to a JSON schema but have no tool calling of their own.

A request with tools is rewritten at the wire level (`emulated_body`): the tools and
``tool_choice`` leave the body; ``response_format`` becomes ``{"type": "json_object",
"schema": ...}`` with the call schema of the named (or the one required) tool, ``{"name":
<const>, "arguments": <the tool's parameters>}``, an ``anyOf`` of the calls for ``required``
with several tools, and for ``auto`` an ``anyOf`` that also allows ``{"answer": <text>}``. The
tool definitions and a short instruction open the first user message (some chat formats, such
as gemma's, drop system messages). Tool results and earlier calls in the history become plain
user and assistant messages. The constrained answer is read back as a normal tool call
(`emulated_response`, `emulated_stream`); a stream is assembled whole and its call (or answer)
is sent as one last chunk. When forge emulates: docs/providers.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

from forge_core.backends.common import new_tool_call_id
from forge_core.backends.http.openai.dialects import Dialect
from forge_core.errors import MalformedResponse
from forge_core.types import ChatChunk, ChatRequest, ChatResponse, ToolCall, ToolCallDelta

__all__ = [
    "aemulated_stream",
    "emulated_body",
    "emulated_response",
    "emulated_stream",
    "emulates",
    "is_forced",
]

Body = dict[str, Any]


def emulates(request: ChatRequest, dialect: Dialect) -> bool:
    """Whether ``request``'s tools are emulated on a server speaking ``dialect``.

    Only where the dialect says the server constrains a forced call by itself but ignores tools
    otherwise (`Dialect.emulate_unforced_tools`): ``auto`` (or no choice) and ``required`` with
    several tools are emulated, a named tool (or ``required`` with one) is sent as is. A request
    that also asks for a response format is never emulated (that format is the answer's).
    """
    if not request.tools or request.response_format is not None:
        return False
    if not dialect.emulate_unforced_tools:
        return False
    choice = request.tool_choice
    if choice == "none":
        return False
    forced_one = isinstance(choice, dict) or (choice == "required" and len(request.tools) == 1)
    return not forced_one


def emulated_body(body: Body, request: ChatRequest) -> Body:
    """``body``, built for ``request`` without its tools, with ``request``'s tool calls
    emulated."""
    tools = [tool.get("function") or {} for tool in request.tools or []]
    choice = request.tool_choice
    offered = _offered(tools, choice)
    calls = [_call_schema(tool) for tool in offered]
    answer_allowed = choice in (None, "auto")
    options = ([_ANSWER_SCHEMA] if answer_allowed else []) + calls
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    out = {key: value for key, value in body.items() if key not in ("tools", "tool_choice")}
    out["messages"] = _with_instruction(_plain(body["messages"]), offered, answer_allowed)
    out["response_format"] = {"type": "json_object", "schema": schema}
    return out


def emulated_response(response: ChatResponse, *, forced: bool) -> ChatResponse:
    """``response`` to an `emulated_body` read back: a tool call or a text answer."""
    content, calls = _read(response.content or "", response, forced=forced)
    if calls:
        return response.model_copy(
            update={"content": None, "tool_calls": calls, "finish_reason": "tool_calls"}
        )
    return response.model_copy(update={"content": content})


def emulated_stream(
    chunks: Iterator[ChatChunk], *, forced: bool
) -> Generator[ChatChunk, None, None]:
    """The chunks of an emulated stream: assembled whole, then sent as one last chunk (the
    model's thinking, not part of the constrained answer, passes as it comes)."""
    text: list[str] = []
    final: ChatChunk | None = None
    for chunk in chunks:
        if chunk.reasoning:
            yield _thinking(chunk)
        text.append(chunk.content)
        final = _merged(final, chunk)
    if final is not None:
        yield _final_chunk(final, "".join(text), forced=forced)


async def aemulated_stream(
    chunks: AsyncIterator[ChatChunk], *, forced: bool
) -> AsyncGenerator[ChatChunk, None]:
    """Async `emulated_stream`."""
    text: list[str] = []
    final: ChatChunk | None = None
    async for chunk in chunks:
        if chunk.reasoning:
            yield _thinking(chunk)
        text.append(chunk.content)
        final = _merged(final, chunk)
    if final is not None:
        yield _final_chunk(final, "".join(text), forced=forced)


def is_forced(request: ChatRequest) -> bool:
    """Whether an emulated request must be answered with a call (not ``auto``)."""
    return request.tool_choice not in (None, "auto")


# -- the request ----------------------------------------------------------------------------

_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _offered(tools: list[dict[str, Any]], choice: Any) -> list[dict[str, Any]]:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        named = [tool for tool in tools if tool.get("name") == name]
        return named or tools
    return tools


def _call_schema(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = tool.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": tool.get("name", "")}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _instruction(tools: list[dict[str, Any]], answer_allowed: bool) -> str:
    listed = json.dumps(
        [
            {key: tool[key] for key in ("name", "description", "parameters") if key in tool}
            for tool in tools
        ]
    )
    how = 'To call a tool, reply with JSON only: {"name": <tool name>, "arguments": {...}}.'
    if answer_allowed:
        how += ' To answer without a tool, reply {"answer": <your answer>}.'
    return f"You can call these tools: {listed}\n{how}"


def _with_instruction(
    messages: list[Body], tools: list[dict[str, Any]], answer_allowed: bool
) -> list[Body]:
    instruction = _instruction(tools, answer_allowed)
    for index, message in enumerate(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            merged: Any = [{"type": "text", "text": instruction}, *content]
        else:
            merged = f"{instruction}\n\n{content or ''}"
        return [*messages[:index], {**message, "content": merged}, *messages[index + 1 :]]
    return [{"role": "user", "content": instruction}, *messages]


def _plain(messages: list[Body]) -> list[Body]:
    """The history without tool roles: calls become assistant JSON, results user messages."""
    names: dict[str, str] = {}
    out: list[Body] = []
    for message in messages:
        calls = message.get("tool_calls") or []
        if calls:
            lines = []
            for call in calls:
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name"))
                arguments = _loaded(function.get("arguments"))
                lines.append(json.dumps({"name": function.get("name"), "arguments": arguments}))
            out.append({"role": "assistant", "content": "\n".join(lines)})
        elif message.get("role") == "tool":
            name = names.get(str(message.get("tool_call_id")), "the tool")
            result = f"{name} returned: {message.get('content')}\n{_AFTER_RESULT}"
            out.append({"role": "user", "content": result})
        else:
            out.append(message)
    return out


_AFTER_RESULT = 'If this answers the question, reply {"answer": <your answer>}.'


def _loaded(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


# -- the answer -----------------------------------------------------------------------------

_CUT_ANSWER = re.compile(r'^\s*\{\s*"answer"\s*:\s*"(?P<text>.*)', re.DOTALL)


def _read(text: str, of: ChatResponse | ChatChunk, *, forced: bool) -> tuple[str, list[ToolCall]]:
    """The answer text and tool calls in a constrained answer ``text``."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        arguments = data.get("arguments")
        if not isinstance(arguments, dict):
            arguments = {}
        return "", [ToolCall(id=new_tool_call_id(), name=data["name"], arguments=arguments)]
    if isinstance(data, dict) and isinstance(data.get("answer"), str) and not forced:
        return data["answer"], []
    if forced or data is not None:
        reason = " (cut off by max_tokens)" if of.finish_reason == "length" else ""
        raise MalformedResponse(
            f"{of.provider.value}: the emulated tool call is not a call{reason}",
            provider=of.provider.value,
            model=of.model,
        )
    # An answer cut off by max_tokens: its text so far.
    cut = _CUT_ANSWER.match(text)
    return (_unescaped(cut.group("text")) if cut else text), []


def _unescaped(fragment: str) -> str:
    fragment = fragment.rstrip().removesuffix("}").rstrip().removesuffix('"')
    try:
        loaded = json.loads(f'"{fragment}"')
    except ValueError:
        return fragment
    return loaded if isinstance(loaded, str) else fragment


def _thinking(chunk: ChatChunk) -> ChatChunk:
    """A chunk of the model's thinking alone."""
    return ChatChunk(reasoning=chunk.reasoning, provider=chunk.provider, model=chunk.model)


def _merged(final: ChatChunk | None, chunk: ChatChunk) -> ChatChunk:
    """The last chunk seen so far, keeping the finish reason and usage of earlier ones."""
    return chunk.model_copy(
        update={
            "content": "",
            "reasoning": "",
            "finish_reason": chunk.finish_reason or (final.finish_reason if final else None),
            "usage": chunk.usage or (final.usage if final else None),
        }
    )


def _final_chunk(final: ChatChunk, text: str, *, forced: bool) -> ChatChunk:
    content, calls = _read(text, final, forced=forced)
    if not calls:
        return final.model_copy(update={"content": content})
    deltas = [
        ToolCallDelta(index=index, id=call.id, name=call.name, arguments=json.dumps(call.arguments))
        for index, call in enumerate(calls)
    ]
    return final.model_copy(
        update={"tool_call_deltas": deltas, "tool_calls": calls, "finish_reason": "tool_calls"}
    )
