"""OpenAI chat-completions wire format: request bodies out, responses and chunks in.

Shared by every backend that speaks it: the HTTP client (OpenAI, OpenRouter, Ollama's ``/v1``,
llama-cpp-python's server) and the in-process llama-cpp-python backend, whose
``create_chat_completion`` returns the same shapes.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from forge_core.backends.common import MAX_MESSAGE, embedding_vector, new_tool_call_id, redact
from forge_core.backends.content import (
    AUDIO_FORMATS,
    leave_out_cache_control,
    refuse,
    tools_without_cache_control,
)
from forge_core.backends.http.openai.dialects import Dialect, any_object, dialect_named
from forge_core.backends.parameters import OPTIONAL_FIELDS, carry_parameters, merge_extra_body
from forge_core.backends.reasoning import openai_reasoning_effort, reasoning_left_out
from forge_core.errors import CapabilityMismatch, MalformedResponse
from forge_core.tool_calls import parse_arguments
from forge_core.types import (
    REASONING_FIELDS,
    AudioPart,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    FilePart,
    ImagePart,
    Message,
    Provider,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "build_body",
    "checked_count",
    "embeddings_body",
    "embeddings_from",
    "error_code",
    "error_message",
    "message_to_wire",
    "parse_chunk",
    "parse_completion",
    "parse_embeddings",
    "parse_usage",
]


def _parts_to_wire(message: Message, provider: str) -> str | list[dict[str, Any]]:
    """A message's parts as OpenAI content parts, in order (a plain string when it is text
    only): ``text``, ``image_url`` (a URL or a data URL, with ``detail``), ``input_audio``
    (base64 wav or mp3) and ``file`` (base64 ``file_data`` as a data URL, with ``filename``).

    A part the format has no place for is refused by name (`content.refuse`).
    """
    if all(isinstance(part, TextPart | ReasoningPart) for part in message.parts):
        return message.text or ""
    wire: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            wire.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            image: dict[str, Any] = {"url": part.data_url}
            if part.detail is not None:
                image["detail"] = part.detail
            wire.append({"type": "image_url", "image_url": image})
        elif isinstance(part, AudioPart):
            audio_format = AUDIO_FORMATS.get(part.media_type or "")
            if part.data is None or audio_format is None:
                raise refuse(part, provider, "audio goes as base64 wav or mp3 data")
            wire.append(
                {"type": "input_audio", "input_audio": {"data": part.data, "format": audio_format}}
            )
        elif isinstance(part, FilePart):
            if part.data is None:
                raise refuse(part, provider, "files go as base64 data")
            file: dict[str, Any] = {"file_data": part.data_url}
            if part.filename is not None:
                file["filename"] = part.filename
            wire.append({"type": "file", "file": file})
        # A ReasoningPart is left out: OpenAI-compatible servers take no reasoning back
        # (`reasoning_left_out` says so in a debug line).
    return wire


def message_to_wire(message: Message, provider: str = "openai") -> dict[str, Any]:
    """One `Message` as an OpenAI chat message (``provider`` names the server in a refusal)."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if isinstance(message.content, list):
        wire["content"] = _parts_to_wire(message, provider)
        reasoning_left_out(message, provider=provider)
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
    dialect: str | Dialect = "openai",
) -> dict[str, Any]:
    """The JSON body of a chat-completions request, in ``dialect`` (a `Dialect` or its name).

    ``max_tokens_field`` is the token-limit field when the dialect leaves it to the client:
    ``max_completion_tokens`` for OpenAI itself; compatible servers (llama-cpp-python, Ollama)
    only honour the legacy ``max_tokens``. The dialect says how the server spells structured
    output and tool choice, and whether it reports usage on streams (docs/providers.md).
    ``prompt_cache_key`` is sent to OpenAI itself only.
    """
    spoken = dialect_named(dialect) if isinstance(dialect, str) else dialect
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_to_wire(message, spoken.name) for message in request.messages],
        "stream": stream,
    }
    if stream and include_usage and spoken.stream_usage:
        body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[spoken.max_tokens_field or max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    leave_out_cache_control(request.messages, spoken.name)
    tools, tool_choice = _tool_choice(request.tools, request.tool_choice, spoken)
    if tools:
        body["tools"] = tools_without_cache_control(tools, spoken.name)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if request.response_format is not None:
        body["response_format"] = _response_format(request.response_format, spoken)
    if request.prompt_cache_key and spoken.name == "openai":
        # OpenAI routes requests with the same key to the same prompt cache; other servers
        # would refuse or ignore the field.
        body["prompt_cache_key"] = request.prompt_cache_key
    fields_set = request.__pydantic_fields_set__
    if not REASONING_FIELDS.isdisjoint(fields_set):
        _reasoning_effort(request, body, spoken)
    if not OPTIONAL_FIELDS.isdisjoint(fields_set):
        carry_parameters(request, body, spoken.parameter_fields, provider=spoken.name)
        merge_extra_body(request, body)
    return body


def _reasoning_effort(request: ChatRequest, body: dict[str, Any], dialect: Dialect) -> None:
    """The request's reasoning fields as ``dialect`` takes them (`openai_reasoning_effort`)."""
    effort = openai_reasoning_effort(
        request,
        provider=dialect.name,
        takes_effort=dialect.reasoning_effort is not None,
        off=dialect.reasoning_off,
    )
    if effort is None:
        return
    if dialect.reasoning_effort == "reasoning.effort":
        body["reasoning"] = {"effort": effort}
    else:
        body["reasoning_effort"] = effort


def _tool_choice(
    tools: list[dict[str, Any]] | None,
    tool_choice: str | dict[str, Any] | None,
    dialect: Dialect,
) -> tuple[list[dict[str, Any]] | None, str | dict[str, Any] | None]:
    """The tools and ``tool_choice`` as ``dialect`` takes them."""
    if not tools:
        return tools, tool_choice
    if dialect.tool_choice == "llama-cpp":
        return tools, _llama_cpp_tool_choice(tools, tool_choice)
    named = _named_tool(tool_choice)
    if named is None or dialect.tool_choice == "openai":
        return tools, tool_choice
    # The server cannot force a named tool; offering only that tool says the same.
    only = [tool for tool in tools if (tool.get("function") or {}).get("name") == named] or tools
    if dialect.tool_choice == "named-as-required":
        return only, "required"
    return only, tool_choice


def _named_tool(tool_choice: str | dict[str, Any] | None) -> str | None:
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        return name if isinstance(name, str) else None
    return None


def _llama_cpp_tool_choice(
    tools: list[dict[str, Any]], tool_choice: str | dict[str, Any] | None
) -> str | dict[str, Any] | None:
    """``tool_choice`` as llama-cpp-python's ``chatml-function-calling`` takes it.

    It offers no tools at all without a ``tool_choice`` (OpenAI means ``auto``) and fails with a
    500 on ``required``; forcing the only tool is what ``required`` means with one tool.
    """
    if tool_choice is None:
        return "auto"
    if tool_choice == "required":
        if len(tools) == 1:
            return {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
        raise CapabilityMismatch(
            "llama-cpp-python's server cannot require a call to one of several tools; "
            "name the tool in tool_choice or pass tool_choice='auto'"
        )
    return tool_choice


def _response_format(response_format: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """``response_format`` as ``dialect`` takes it.

    llama-cpp-python's server answers ``json_schema`` with a 500 but constrains generation to a
    schema given as ``{"type": "json_object", "schema": ...}``; LM Studio refuses
    ``json_object`` but takes a ``json_schema`` that allows any object.
    """
    kind = response_format.get("type")
    if dialect.schema_as_json_object and kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
    if dialect.json_object_as_schema and kind == "json_object":
        schema = response_format.get("schema") or any_object()
        return {"type": "json_schema", "json_schema": {"name": "json_object", "schema": schema}}
    return response_format


def parse_usage(data: Any) -> Usage | None:
    """``usage`` of a response or chunk, or None when absent."""
    fields = _usage_fields(data)
    return Usage(**fields) if fields is not None else None


def _usage_fields(data: Any) -> dict[str, int] | None:
    """``usage`` as `Usage` fields: ``prompt_tokens`` (cached ones included, their count in
    ``prompt_tokens_details.cached_tokens``) and ``completion_tokens`` (reasoning included:
    ``completion_tokens_details.reasoning_tokens``)."""
    if not isinstance(data, dict):
        return None
    fields = {
        "input_tokens": int(data.get("prompt_tokens") or 0),
        "output_tokens": int(data.get("completion_tokens") or 0),
    }
    prompt_details = data.get("prompt_tokens_details")
    if prompt_details:
        fields["cached_input_tokens"] = int(prompt_details.get("cached_tokens") or 0)
    completion_details = data.get("completion_tokens_details")
    if completion_details:
        fields["reasoning_tokens"] = int(completion_details.get("reasoning_tokens") or 0)
    return fields


def parse_completion(data: dict[str, Any], provider: Provider, model: str) -> ChatResponse:
    """A non-streamed chat completion. Raises ``KeyError``/``ValueError`` on a malformed body.

    The model's thinking is ``message.reasoning_content`` (DeepSeek, vLLM, llama-server) or
    ``message.reasoning`` (OpenRouter, newer vLLM, Ollama's ``/v1``); the token log
    probabilities, when asked for, ``choices[0].logprobs.content``."""
    choice = data["choices"][0]
    message = choice["message"]
    tool_calls = [
        ToolCall(
            id=call.get("id") or new_tool_call_id(),
            name=call["function"]["name"],
            arguments=parse_arguments(call["function"].get("arguments")),
        )
        for call in message.get("tool_calls") or []
    ]
    # One validation for the answer, its usage and its (empty) route: a third cheaper than
    # building the three models one by one.
    fields = {
        "content": message.get("content"),
        "tool_calls": tool_calls,
        "finish_reason": choice.get("finish_reason"),
        "usage": _usage_fields(data.get("usage")),
        "provider": provider,
        "model": str(data.get("model") or model),
        "route": {},
    }
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        fields["reasoning"] = reasoning
    logprobs = choice.get("logprobs")
    if logprobs:
        fields["logprobs"] = logprobs.get("content")
    return ChatResponse.model_validate(fields)


def parse_chunk(data: dict[str, Any], provider: Provider, model: str) -> ChatChunk:
    """One streamed chunk. The usage-only last chunk has ``choices: []``; thinking comes as
    ``delta.reasoning_content`` or ``delta.reasoning``."""
    choices = data.get("choices") or []
    content = ""
    reasoning = ""
    deltas: list[ToolCallDelta] = []
    finish_reason = None
    logprobs = None
    if choices:
        choice = choices[0]
        choice_logprobs = choice.get("logprobs")
        if choice_logprobs:
            logprobs = choice_logprobs.get("content")
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
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
        reasoning=reasoning,
        logprobs=logprobs,
        tool_call_deltas=deltas,
        finish_reason=finish_reason,
        usage=parse_usage(data.get("usage")),
        provider=provider,
        model=str(data.get("model") or model),
    )


def embeddings_body(texts: list[str], model: str) -> dict[str, Any]:
    """The JSON body of ``POST /embeddings`` (float vectors, never base64)."""
    return {"model": model, "input": texts, "encoding_format": "float"}


def parse_embeddings(data: Any, provider: Provider, model: str) -> EmbeddingResponse:
    """An ``/embeddings`` answer: ``data[i].embedding`` ordered by ``index``, ``usage``."""
    items = sorted(data["data"], key=lambda item: int(item.get("index", 0)))
    tokens = (data.get("usage") or {}).get("prompt_tokens")
    return EmbeddingResponse(
        vectors=[embedding_vector(item["embedding"]) for item in items],
        provider=provider,
        model=str(data.get("model") or model),
        input_tokens=int(tokens) if tokens is not None else None,
    )


def embeddings_from(
    response: httpx.Response, provider: Provider, model: str, count: int
) -> EmbeddingResponse:
    """The vectors of an OpenAI ``/embeddings`` answer, one per text asked for."""
    try:
        result = parse_embeddings(response.json(), provider, model)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponse(
            f"{provider.value}: malformed embeddings response: {redact(str(exc))}",
            provider=provider.value,
            model=model,
        ) from exc
    return checked_count(result, count)


def checked_count(result: EmbeddingResponse, count: int) -> EmbeddingResponse:
    """``result`` when it holds ``count`` vectors; else `MalformedResponse`."""
    if len(result.vectors) != count:
        raise MalformedResponse(
            f"{result.provider.value}: asked for {count} embeddings, got {len(result.vectors)}",
            provider=result.provider.value,
            model=result.model,
        )
    return result


def error_code(data: Any) -> Any:
    """The ``error.code`` of an OpenAI-shaped error body, if it has one."""
    error = data.get("error") if isinstance(data, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def error_message(data: Any) -> str | None:
    """The message of an error body: OpenAI / OpenRouter (``{"error": {...}}``), Ollama and
    LM Studio (``{"error": "..."}``), vLLM (``{"object": "error", "message": ...}``) or FastAPI
    (``{"detail": ...}``)."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, str):
        return redact(error)[:MAX_MESSAGE]
    if isinstance(error, dict) and error.get("message"):
        return redact(str(error["message"]))[:MAX_MESSAGE]
    if data.get("object") == "error" and data.get("message"):
        return redact(str(data["message"]))[:MAX_MESSAGE]
    if data.get("detail"):
        detail = data["detail"]
        return redact(detail if isinstance(detail, str) else json.dumps(detail))[:MAX_MESSAGE]
    return None
