"""`OllamaClient`: Ollama through its native API (``api: native``).

Chat through ``/api/chat`` (NDJSON streaming, and the options only the native API has:
``num_ctx``, sized per request so a long prompt is not cut (`sized_num_ctx`), ``keep_alive``,
``think``, per request from its reasoning fields) and embeddings through ``/api/embed``: the
request body, the answer (``message.thinking`` as its reasoning), tool calls, usage and the
stream (`_NativeStream`: thinking pieces before the text). Listing, health and
capabilities come from its `OllamaAdmin` (`AdminBackedClient`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping, Sequence
from typing import Any

import httpx

from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts
from forge_core.backends.common import (
    ToolCallAssembler,
    embedding_vector,
    new_tool_call_id,
    redact,
)
from forge_core.backends.content import leave_out_cache_control, tools_without_cache_control
from forge_core.backends.http.ollama.admin import OllamaAdmin
from forge_core.backends.http.ollama.admin_backed import (
    DEFAULT_OLLAMA_EMBEDDING_MODEL,
    OLLAMA_DEFAULT_NUM_CTX,
    AdminBackedClient,
)
from forge_core.backends.http.ollama.wire import (
    base64_image,
    check_parts,
    json_object,
    malformed,
    stream_failure,
)
from forge_core.backends.http.openai.wire import checked_count
from forge_core.backends.http.pool import ClientPool
from forge_core.backends.http.transport import Call
from forge_core.backends.parameters import OPTIONAL_FIELDS, carry_parameters, merge_extra_body
from forge_core.backends.reasoning import ollama_think, ollama_thinking
from forge_core.types import (
    REASONING_FIELDS,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    ImagePart,
    Message,
    Provider,
    RouteTrail,
    ToolCall,
    Usage,
)

__all__ = [
    "ANSWER_RESERVE_TOKENS",
    "OLLAMA_DEFAULT_NUM_CTX",
    "OllamaClient",
    "context_need",
    "cut_prompt_note",
    "noted_if_cut",
    "sized_num_ctx",
]

_log = logging.getLogger(__name__)


class OllamaClient(AdminBackedClient):
    """Chat through Ollama's native ``/api/chat`` and embeddings through ``/api/embed``.

    Example:
        ```python
        ollama = OllamaClient("http://localhost:11434", default_model="llama3.2")
        if ollama.health():
            print([model.id for model in ollama.list_models()])
        ```
    """

    provider = Provider.OLLAMA

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        default_model: str,
        default_embedding_model: str = DEFAULT_OLLAMA_EMBEDDING_MODEL,
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        num_ctx: int | None = None,
        keep_alive: str | int | None = None,
        think: bool | str | None = None,
        preferred_models: Sequence[str] = (),
        auto_discovery: bool = True,
        pool: ClientPool | None = None,
        admin: OllamaAdmin | None = None,
    ) -> None:
        self.preferred_models = tuple(preferred_models)
        self.auto_discovery = auto_discovery
        # A given admin is shared (the /v1 client's, whose long requests come this way).
        self.admin = admin or OllamaAdmin(
            base_url,
            timeout_seconds=timeout_seconds,
            health_check_timeout=health_check_timeout,
            keep_alive=keep_alive,
            pool=pool,
        )
        self.base_url = self.admin.base_url
        self._default_model = default_model
        self._default_embedding_model = default_embedding_model
        self._num_ctx = num_ctx
        self.default_context = num_ctx or OLLAMA_DEFAULT_NUM_CTX
        self._keep_alive = keep_alive
        self._think = think

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- protocol ---------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default model."""
        return self._default_model

    def default_embedding_model(self) -> str:
        """The model that embeds when the request names none."""
        return self._default_embedding_model

    def check_ready(self, model: str) -> None:
        """Nothing to check without the network: Ollama needs no key."""

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer from ``/api/chat``; a prompt Ollama cut is noted on its route
        (`cut_prompt_note`)."""
        call = self._chat_call(request, model, False)
        response = self.admin.transport.send(call, timeouts)
        return _noted(_native_response(json_object(response, model), model), request, call)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        call = self._chat_call(request, model, False)
        data = json_object(await self.admin.transport.asend(call, timeouts), model)
        return _noted(_native_response(data, model), request, call)

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks, from the NDJSON lines of ``/api/chat``; a prompt Ollama cut
        is noted on the last chunk's route."""
        call = self._chat_call(request, model, True)
        return self.admin.transport.stream(call, timeouts, _NativeStream(model, request, call))

    def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        call = self._chat_call(request, model, True)
        return self.admin.transport.astream(call, timeouts, _NativeStream(model, request, call))

    def embed(self, texts: list[str], model: str, timeouts: AttemptTimeouts) -> EmbeddingResponse:
        """One vector per text from ``POST /api/embed``."""
        response = self.admin.transport.send(_embed_call(texts, model), timeouts)
        return _embeddings_from(response, model, len(texts))

    async def aembed(
        self, texts: list[str], model: str, timeouts: AttemptTimeouts
    ) -> EmbeddingResponse:
        """Async `embed`."""
        response = await self.admin.transport.asend(_embed_call(texts, model), timeouts)
        return _embeddings_from(response, model, len(texts))

    # -- request ------------------------------------------------------------------------------

    def native_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        """The JSON body of a native ``/api/chat`` request."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [_native_message(message) for message in request.messages],
            "stream": stream,
        }
        leave_out_cache_control(request.messages, "ollama")
        if request.tools and request.tool_choice != "none":
            body["tools"] = tools_without_cache_control(request.tools, "ollama")
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.stop:
            options["stop"] = list(request.stop)
        known = self.admin.model_capabilities.get(model)
        num_ctx = sized_num_ctx(request, self._num_ctx, known.context_window if known else None)
        if num_ctx is not None:
            options["num_ctx"] = num_ctx
        keep_alive = self._keep_alive
        optional = not OPTIONAL_FIELDS.isdisjoint(request.__pydantic_fields_set__)
        if optional:
            # A num_ctx the caller set wins over the sized one; keep_alive is a top-level field.
            carry_parameters(request, options, _OPTION_FIELDS, provider="ollama (native)")
            keep_alive = options.pop("keep_alive", keep_alive)
        if options:
            body["options"] = options
        response_format = request.response_format or {}
        if response_format.get("type") == "json_object":
            body["format"] = "json"
        elif response_format.get("type") == "json_schema":
            body["format"] = response_format["json_schema"]["schema"]
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        think = self._think
        if not REASONING_FIELDS.isdisjoint(request.__pydantic_fields_set__):
            think = ollama_think(request, model, think)
        if think is not None:
            body["think"] = think
        return merge_extra_body(request, body) if optional else body

    def _chat_call(self, request: ChatRequest, model: str, stream: bool) -> Call:
        body = self.native_body(request, model, stream=stream)
        return Call("POST", "/api/chat", model, body, events="ndjson")


# -- context size -------------------------------------------------------------------------------

#: Tokens kept free for the answer when a request sets no ``max_tokens``.
ANSWER_RESERVE_TOKENS = 1024
#: Characters per token when sizing the context: on the generous side, since a context too
#: small cuts the prompt and one too large only costs memory.
_CHARS_PER_TOKEN = 3


#: Characters per token at most, for a prompt's least possible token count: a prompt with more
#: than this many characters per context token cannot have fitted.
_MAX_CHARS_PER_TOKEN = 8
#: Characters per token of ordinary text, for the estimate a warning shows.
_TYPICAL_CHARS_PER_TOKEN = 4


def _prompt_chars(request: ChatRequest) -> int:
    chars = sum(len(message.text or "") for message in request.messages)
    if request.tools:
        chars += len(json.dumps(request.tools))
    return chars


def context_need(request: ChatRequest) -> int:
    """The context ``request`` needs, estimated on the generous side: its prompt (messages
    and tool schemas) at 3 characters a token, plus ``max_tokens`` (or
    `ANSWER_RESERVE_TOKENS`) for the answer."""
    return _prompt_chars(request) // _CHARS_PER_TOKEN + (
        request.max_tokens or ANSWER_RESERVE_TOKENS
    )


def sized_num_ctx(request: ChatRequest, configured: int | None, window: int | None) -> int | None:
    """The ``num_ctx`` to send for ``request``: None (the server's default) or ``configured``
    while the prompt and the answer fit in it (or in Ollama's default), else enough for both,
    rounded up to a power of two (each new size reloads the model, so few sizes are used) and
    capped at the model's own context length ``window`` when known."""
    floor = configured or OLLAMA_DEFAULT_NUM_CTX
    need = context_need(request)
    if need <= floor:
        return configured
    size = max(1 << (need - 1).bit_length(), floor)
    return min(size, window) if window else size


def cut_prompt_note(request: ChatRequest, evaluated: int, num_ctx: int) -> str | None:
    """What to tell the caller when Ollama's ``prompt_eval_count`` (``evaluated``) shows it cut
    ``request``'s prompt to the context ``num_ctx`` it ran with, else None.

    Ollama cuts a prompt longer than its context without an error (it drops the start of the
    conversation). The signs: the tokens it read filled the context, or the prompt has more
    characters than the context could hold at `_MAX_CHARS_PER_TOKEN` characters a token (no
    text tokenizes coarser) and fewer tokens than that were read. A prompt read from Ollama's
    cache counts fewer tokens, so "fewer than estimated" alone is no sign; it is only one
    together with a prompt too long for the context.
    """
    chars = _prompt_chars(request)
    least = chars // _MAX_CHARS_PER_TOKEN
    if evaluated < num_ctx and not (least > num_ctx and evaluated < least):
        return None
    return (
        f"ollama cut the prompt to its {num_ctx}-token context: it read {evaluated} prompt "
        f"tokens of about {chars // _TYPICAL_CHARS_PER_TOKEN} sent ({chars} characters); the "
        "start of the conversation was not seen. Raise num_ctx (or send the request through "
        "Ollama's native API, which forge sizes per request)"
    )


def _sent_num_ctx(call: Call) -> int:
    """The context a native ``/api/chat`` call ran with: its ``options.num_ctx``, else
    Ollama's default."""
    body = call.json if isinstance(call.json, Mapping) else {}
    options = body.get("options")
    sent = options.get("num_ctx") if isinstance(options, Mapping) else None
    return sent if isinstance(sent, int) and sent > 0 else OLLAMA_DEFAULT_NUM_CTX


def noted_if_cut(
    route: RouteTrail, request: ChatRequest, usage: Usage | None, num_ctx: int
) -> None:
    """When ``usage`` shows Ollama cut ``request``'s prompt (`cut_prompt_note`), a warning
    with the numbers and the same words among ``route``'s notes."""
    if usage is None or not usage.input_tokens:
        return
    note = cut_prompt_note(request, usage.input_tokens, num_ctx)
    if note is not None:
        _log.warning("forge: %s", note)
        route.notes.append(note)


def _noted(response: ChatResponse, request: ChatRequest, call: Call) -> ChatResponse:
    noted_if_cut(response.route, request, response.usage, _sent_num_ctx(call))
    return response


# -- wire ---------------------------------------------------------------------------------------

#: The sampling parameters ``/api/chat`` takes, as ``options`` entries (Ollama's Modelfile
#: parameters; ``keep_alive`` is moved to the top level); the rest (logit_bias, logprobs,
#: tools in parallel, user, service tier) it lacks.
_OPTION_FIELDS = {
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "repeat_penalty": "repeat_penalty",
    "num_ctx": "num_ctx",
    "keep_alive": "keep_alive",
}


def _native_response(data: Mapping[str, Any], model: str) -> ChatResponse:
    try:
        message = data["message"]
        calls = [_native_call(call) for call in message.get("tool_calls") or []]
        return ChatResponse(
            content=message.get("content") or None,
            reasoning=message.get("thinking") or None,
            tool_calls=calls,
            finish_reason=_finish_reason(data.get("done_reason"), bool(calls)),
            usage=_native_usage(data),
            provider=Provider.OLLAMA,
            model=str(data.get("model") or model),
            route=RouteTrail(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed("malformed /api/chat answer", model) from exc


def _embed_call(texts: list[str], model: str) -> Call:
    return Call("POST", "/api/embed", model, {"model": model, "input": texts})


def _embeddings_from(response: httpx.Response, model: str, count: int) -> EmbeddingResponse:
    """An ``/api/embed`` answer: ``embeddings`` (always a list), ``prompt_eval_count``."""
    data = json_object(response, model)
    try:
        tokens = data.get("prompt_eval_count")
        result = EmbeddingResponse(
            vectors=[embedding_vector(item) for item in data["embeddings"]],
            provider=Provider.OLLAMA,
            model=str(data.get("model") or model),
            input_tokens=int(tokens) if tokens is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed(f"malformed embeddings response: {redact(str(exc))}", model) from exc
    return checked_count(result, count)


def _native_message(message: Message) -> dict[str, Any]:
    """One message as ``/api/chat`` takes it: its text, then its images as bare base64 in
    ``images`` (the native API has no place for where an image sat in the text)."""
    if not isinstance(message.content, list):
        wire: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    else:
        check_parts([message])
        wire = {"role": message.role, "content": message.text or ""}
        if images := message.parts_of(ImagePart):
            wire["images"] = [base64_image(image) for image in images]
        if message.role == "assistant" and (thinking := ollama_thinking(message)):
            wire["thinking"] = thinking
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        if message.name:
            wire["tool_name"] = message.name
        if message.tool_call_id:
            wire["tool_call_id"] = message.tool_call_id
    return wire


def _native_call(call: Mapping[str, Any]) -> ToolCall:
    function = call["function"]
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return ToolCall(
        id=call.get("id") or new_tool_call_id(), name=function["name"], arguments=arguments
    )


def _finish_reason(done_reason: str | None, called_tools: bool) -> str | None:
    # Ollama keeps done_reason "stop" when the model called tools; forge says so, like /v1 does.
    if called_tools and done_reason in (None, "stop"):
        return "tool_calls"
    return done_reason


def _native_usage(data: Mapping[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    return Usage(
        input_tokens=int(data.get("prompt_eval_count") or 0),
        output_tokens=int(data.get("eval_count") or 0),
    )


class _NativeStream:
    """Turns ``/api/chat`` NDJSON objects into chunks."""

    def __init__(self, model: str, request: ChatRequest, call: Call) -> None:
        self.model = model
        self.request = request
        self.call = call
        self.done = False
        self._tools = ToolCallAssembler()
        self._calls = 0

    def feed(self, data: dict[str, Any]) -> Iterable[ChatChunk]:
        """The chunks one NDJSON object yields; an ``{"error": ...}`` line raises."""
        if "error" in data:
            raise stream_failure(str(data["error"]), self.model)
        chunk = self._chunk(data)
        return (chunk,) if chunk is not None else ()

    def end(self) -> None:
        raise malformed("the stream ended before done", self.model)

    def _chunk(self, data: dict[str, Any]) -> ChatChunk | None:
        try:
            self.model = str(data.get("model") or self.model)
            message = data.get("message") or {}
            deltas = []
            for call in message.get("tool_calls") or []:
                parsed = _native_call(call)
                # A native stream sends each call whole: every call is a new slot.
                deltas.append(
                    self._tools.add(
                        self._calls,
                        id=parsed.id,
                        name=parsed.name,
                        arguments=json.dumps(parsed.arguments),
                    )
                )
                self._calls += 1
            thinking = message.get("thinking") or ""
            if data.get("done"):
                self.done = True
                calls = self._tools.calls()
                usage = _native_usage(data)
                route = RouteTrail()
                noted_if_cut(route, self.request, usage, _sent_num_ctx(self.call))
                return ChatChunk(
                    content=message.get("content") or "",
                    reasoning=thinking,
                    tool_call_deltas=deltas,
                    tool_calls=calls,
                    finish_reason=_finish_reason(data.get("done_reason"), bool(calls)) or "stop",
                    usage=usage,
                    provider=Provider.OLLAMA,
                    model=self.model,
                    route=route if route.notes else None,
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise malformed("malformed /api/chat line", self.model) from exc
        content = message.get("content") or ""
        if not content and not deltas and not thinking:
            return None
        return ChatChunk(
            content=content,
            reasoning=thinking,
            tool_call_deltas=deltas,
            provider=Provider.OLLAMA,
            model=self.model,
        )
