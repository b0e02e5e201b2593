"""A chat and embeddings client for any OpenAI-compatible HTTP endpoint.

Serves OpenAI, OpenRouter, Ollama's ``/v1`` surface, llama-cpp-python's server, llama.cpp's
llama-server, vLLM and LM Studio. Requests are built in the endpoint's dialect (configured, or
identified once from what the server says about itself: `_dialects`) and answers parsed here;
the I/O is the shared `Transport`'s, and HTTP error statuses become forge errors in
`OpenAICompatibleClient._error_for_status` (in-stream errors in `_stream_error`) on top of the
one status table. A request refused for a parameter is sent once more in another form where one
exists, and what the endpoint refused is remembered (`_dialects.Lessons`). Wire notes:
docs/providers.md.

Fields of OpenAI's documented chat-completions API that forge does not carry: request ``n``
(an unknown option, refused), the ``developer`` role; response ``refusal``, ``annotations``,
``x-ratelimit-*`` headers and ``x-should-retry``. OpenRouter: the ``models`` fallback list,
``provider`` routing preferences, ``usage.cost``, ``native_finish_reason``,
``X-Generation-Id``. What each dialect carries and leaves out of the generation parameters:
docs/providers.md. llama-cpp-python's server sends no usage when
streaming (it ignores ``stream_options``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import ServerSentEvent

from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts, ModelInfo
from forge_core.backends.common import (
    ToolCallAssembler,
    error_class_for_status,
    fingerprint_of_key,
    read_api_key,
    redact,
    status_error,
)
from forge_core.backends.http.openai.dialects import (
    DetectedDialect,
    Dialect,
    Lessons,
    adetect,
    detect,
    dialect_by_host,
    dialect_named,
    error_text,
    is_validation_error,
    refusal_of,
    rejected,
    rejected_parameters,
    server_root,
)
from forge_core.backends.http.openai.modalities import REPORTS, ServerModalities
from forge_core.backends.http.openai.tool_emulation import (
    aemulated_stream,
    emulated_body,
    emulated_response,
    emulated_stream,
    emulates,
    is_forced,
)
from forge_core.backends.http.openai.wire import (
    build_body,
    embeddings_body,
    embeddings_from,
    error_code,
    error_message,
    parse_chunk,
    parse_completion,
)
from forge_core.backends.http.pool import ClientPool
from forge_core.backends.http.transport import Call, Transport
from forge_core.errors import (
    AuthenticationFailed,
    BadRequest,
    CapabilityMismatch,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
)
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    ModelRequirements,
    Provider,
)

__all__ = ["OpenAICompatibleClient"]

#: The model an OpenAI-compatible endpoint embeds with when the request names none.
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"

if TYPE_CHECKING:
    from forge_core.backends.base import LessonStore


class OpenAICompatibleClient:
    """Chat over ``POST {base_url}{chat_path}`` and embeddings over ``POST {base_url}{embeddings_path}``
    in the OpenAI formats.

    ``dialect`` is the server's flavour of the format (a `Dialect` or its name); None identifies
    the server by its host, else once, on the first request whose form depends on it (tools or
    a response format), from what it says about itself (`server_dialect`). A server whose
    dialect reports what its models take (llama-server, LM Studio) is asked that the first time
    a request with an image or audio part reaches a model there (`ModelDescriber`: `describe`).

    The API key is read from ``api_key_env`` at call time and never stored on the object, so it
    cannot leak through a ``repr`` or a traceback's locals of this object.
    """

    def __init__(
        self,
        provider: Provider,
        base_url: str,
        *,
        default_model: str,
        api_key_env: str | None = None,
        chat_path: str = "/chat/completions",
        embeddings_path: str = "/embeddings",
        default_embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        max_tokens_field: str = "max_tokens",
        extra_headers: Mapping[str, str] | None = None,
        unavailable_error: type[ProviderUnavailable] = ProviderUnavailable,
        capabilities: Capabilities | None = None,
        dialect: str | Dialect | None = "openai",
        models_path: str = "/models",
        timeout_seconds: float = 60.0,
        pool: ClientPool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._default_model = default_model
        self._default_embedding_model = default_embedding_model
        self.api_key_env = api_key_env
        self._chat_path = chat_path
        self._embeddings_path = embeddings_path
        self._max_tokens_field = max_tokens_field
        self._extra_headers = dict(extra_headers or {})
        self._capabilities = capabilities or profiles.OPENAI_COMPATIBLE
        fixed = dialect_named(dialect) if isinstance(dialect, str) else dialect
        self._dialect = DetectedDialect(fixed or dialect_by_host(self.base_url))
        self._lessons = Lessons()
        self._modalities = ServerModalities()
        self._models_path = models_path
        self._model_capabilities: dict[str, Capabilities] = {}
        self._env = env
        self._transport = Transport(
            provider,
            self.base_url,
            headers=self._headers,
            status_error=self._error_for_status,
            unavailable=unavailable_error,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider.value!r}, base_url={self.base_url!r})"
        )

    # -- protocol ---------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default model of this endpoint."""
        return self._default_model

    def default_embedding_model(self) -> str:
        """The model this endpoint embeds with when the request names none."""
        return self._default_embedding_model

    def check_ready(self, model: str) -> None:
        """Fail without network when the API key this endpoint needs is not set."""
        self._api_key()

    def capabilities(self, model: str) -> Capabilities:
        """What ``model`` can do: from the last model listing when it said (OpenRouter), else
        the capabilities configured for this endpoint with the images and audio its server
        reported (`describe`), less what this endpoint refused for ``model``
        (`_dialects.Lessons`). Never a network call."""
        base = self._model_capabilities.get(model) or (
            profiles.for_openai_model(self._capabilities, model)
            if self.provider is Provider.OPENAI
            else self._capabilities
        )
        reported = self._modalities.of(model)
        if reported is not None:
            base = profiles.with_reported_modalities(
                base, vision=reported.vision, audio=reported.audio
            )
        known = self._dialect.known
        if base.tools and known is not None and known.emulate_unforced_tools:
            base = base.model_copy(update={"tools_emulated": True})
        return self._lessons.capabilities(model, base)

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer."""
        if self._depends_on_dialect(request):
            self.server_dialect()
        body = self._body(request, model, stream=False)
        response = self._send_learning(body, model, timeouts)
        return self._read_back(
            request, body, self._completion_from(response, model, request.max_tokens)
        )

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        if self._depends_on_dialect(request):
            await self.aserver_dialect()
        body = self._body(request, model, stream=False)
        response = await self._asend_learning(body, model, timeouts)
        return self._read_back(
            request, body, self._completion_from(response, model, request.max_tokens)
        )

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks, parsed from the SSE stream."""
        if self._depends_on_dialect(request):
            self.server_dialect()
        body = self._body(request, model, stream=True)
        chunks = self._stream_learning(body, model, timeouts)
        if _emulated(request, body):
            return emulated_stream(chunks, forced=is_forced(request))
        return chunks

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        if self._depends_on_dialect(request):
            await self.aserver_dialect()
        body = self._body(request, model, stream=True)
        chunks = self._astream_learning(body, model, timeouts)
        if _emulated(request, body):
            chunks = aemulated_stream(chunks, forced=is_forced(request))
        async with aclosing(chunks) as each:
            async for chunk in each:
                yield chunk

    # -- dialect ----------------------------------------------------------------------------

    @property
    def dialect(self) -> str | None:
        """The name of this endpoint's dialect: configured, or detected; None until detected."""
        known = self._dialect.known
        return known.name if known is not None else None

    def server_dialect(self) -> Dialect:
        """This endpoint's dialect, identifying the server first if nobody has yet: a few
        unbilled GETs (`_dialects.PROBES`), once per endpoint."""
        return self._identified(self._probe)

    def _identified(self, get: Callable[[str], httpx.Response | None]) -> Dialect:
        if self._dialect.needs_detection():
            return self._dialect.settle(detect(get, self.base_url))
        return self._dialect.current()

    def dialect_name(self) -> str:
        """The name of `server_dialect` (identifying the server first if nobody has yet)."""
        return self.server_dialect().name

    async def aserver_dialect(self) -> Dialect:
        """Async `server_dialect`."""
        return await self._aidentified(self._aprobe)

    async def _aidentified(self, get: Callable[[str], Awaitable[httpx.Response | None]]) -> Dialect:
        if self._dialect.needs_detection():
            return self._dialect.settle(await adetect(get, self.base_url))
        return self._dialect.current()

    # -- ModelDescriber: what the server reports a model takes --------------------------------

    def should_describe(self, model: str, needs: ModelRequirements) -> bool:
        """Whether ``needs`` holds an image or audio part and this endpoint's server may report
        whether ``model`` takes it and has not yet (nor failed to, lately:
        `_modalities.ServerModalities.wants`). No network call."""
        return (needs.vision or needs.image_urls or needs.audio) and self._modalities.wants(
            model, self._dialect.known
        )

    def describe(self, model: str) -> None:
        """Ask the server what ``model`` takes, identifying it first if nobody has (its
        dialect's report, `_modalities.REPORTS`: one unbilled GET, within the health-check
        timeout, that identification may have made already); a server of another dialect is
        not asked, and a failure keeps the defaults for a while. Never raises."""
        answers: dict[str, httpx.Response | None] = {}

        def get(url: str) -> httpx.Response | None:
            answers[url] = self._probe(url)
            return answers[url]

        report = REPORTS.get(self._identified(get).name)
        if report is None:
            self._unidentified()
            return
        url = server_root(self.base_url) + report.path
        response = answers[url] if url in answers else self._probe(url)
        self._modalities.note(model, report, response, self.base_url)

    async def adescribe(self, model: str) -> None:
        """Async `describe`."""
        answers: dict[str, httpx.Response | None] = {}

        async def get(url: str) -> httpx.Response | None:
            answers[url] = await self._aprobe(url)
            return answers[url]

        report = REPORTS.get((await self._aidentified(get)).name)
        if report is None:
            self._unidentified()
            return
        url = server_root(self.base_url) + report.path
        response = answers[url] if url in answers else await self._aprobe(url)
        self._modalities.note(model, report, response, self.base_url)

    def _unidentified(self) -> None:
        # A server that answered no probe may be one that reports: ask again later, not now.
        if self._dialect.known is None:
            self._modalities.failed(self.base_url, "", "the server was not identified")

    @staticmethod
    def _depends_on_dialect(request: ChatRequest) -> bool:
        # Plain requests read the same in every dialect: the server is identified only when
        # the answer would change what is sent.
        return bool(request.tools) or request.response_format is not None

    def _probe(self, url: str) -> httpx.Response | None:
        try:
            return self._transport.send(Call("GET", url), DEFAULT_HEALTH_TIMEOUT)
        except ProviderError as exc:
            return httpx.Response(exc.status_code) if exc.status_code is not None else None

    async def _aprobe(self, url: str) -> httpx.Response | None:
        try:
            return await self._transport.asend(Call("GET", url), DEFAULT_HEALTH_TIMEOUT)
        except ProviderError as exc:
            return httpx.Response(exc.status_code) if exc.status_code is not None else None

    # -- refusals ---------------------------------------------------------------------------

    def _send_learning(
        self, body: dict[str, Any], model: str, timeouts: AttemptTimeouts
    ) -> httpx.Response:
        """The answer to ``body``; a refusal is sent once more translated, where it can be."""
        try:
            return self._transport.send(self._call(body, model), timeouts)
        except BadRequest as exc:
            named, translation, retry = self._translation_after(exc, body, model)
        try:
            response = self._transport.send(self._call(retry, model), timeouts)
        except BadRequest as again:
            self._refused_again(named, again, body, model)
            raise
        self._lessons.succeeded(model, translation)
        return response

    async def _asend_learning(
        self, body: dict[str, Any], model: str, timeouts: AttemptTimeouts
    ) -> httpx.Response:
        """Async `_send_learning`."""
        try:
            return await self._transport.asend(self._call(body, model), timeouts)
        except BadRequest as exc:
            named, translation, retry = self._translation_after(exc, body, model)
        try:
            response = await self._transport.asend(self._call(retry, model), timeouts)
        except BadRequest as again:
            self._refused_again(named, again, body, model)
            raise
        self._lessons.succeeded(model, translation)
        return response

    def _stream_learning(
        self, body: dict[str, Any], model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        # A refusal is an HTTP status, so it always comes before the first chunk.
        try:
            yield from self._transport.stream(
                self._call(body, model), timeouts, _CompletionStream(self, model)
            )
            return
        except BadRequest as exc:
            named, translation, retry = self._translation_after(exc, body, model)
        try:
            yield from self._transport.stream(
                self._call(retry, model), timeouts, _CompletionStream(self, model)
            )
        except BadRequest as again:
            self._refused_again(named, again, body, model)
            raise
        self._lessons.succeeded(model, translation)

    async def _astream_learning(
        self, body: dict[str, Any], model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        try:
            async with aclosing(
                self._transport.astream(
                    self._call(body, model), timeouts, _CompletionStream(self, model)
                )
            ) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        except BadRequest as exc:
            named, translation, retry = self._translation_after(exc, body, model)
        try:
            async with aclosing(
                self._transport.astream(
                    self._call(retry, model), timeouts, _CompletionStream(self, model)
                )
            ) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BadRequest as again:
            self._refused_again(named, again, body, model)
            raise
        self._lessons.succeeded(model, translation)

    def _translation_after(
        self, error: BadRequest, body: dict[str, Any], model: str
    ) -> tuple[frozenset[str], str, dict[str, Any]]:
        """What a refusal named, the translation to try once and its body; re-raises
        ``error`` when it is no refusal or there is no translation for it."""
        named = refusal_of(error)
        picked = self._lessons.retry_body(model, body, named) if named else None
        if named is None or picked is None:
            raise error
        return named, *picked

    def _refused_again(
        self, named: frozenset[str], again: BadRequest, body: dict[str, Any], model: str
    ) -> None:
        # Refused again for the same field: the endpoint cannot do it at all, in either form.
        if named & (refusal_of(again) or frozenset()):
            self._lessons.refused_again(model, body, named)

    # -- embeddings ---------------------------------------------------------------------------

    def embed(self, texts: list[str], model: str, timeouts: AttemptTimeouts) -> EmbeddingResponse:
        """One vector per text, one POST for the whole batch."""
        response = self._transport.send(self._embeddings_call(texts, model), timeouts)
        return embeddings_from(response, self.provider, model, len(texts))

    async def aembed(
        self, texts: list[str], model: str, timeouts: AttemptTimeouts
    ) -> EmbeddingResponse:
        """Async `embed`."""
        response = await self._transport.asend(self._embeddings_call(texts, model), timeouts)
        return embeddings_from(response, self.provider, model, len(texts))

    # -- discovery --------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        """The models ``GET {base_url}/models`` lists; OpenRouter's metadata is remembered and
        feeds `capabilities`."""
        return self._models_from(self._transport.send(Call("GET", self._models_path)))

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        return self._models_from(await self._transport.asend(Call("GET", self._models_path)))

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """A key is set (when one is needed) and ``GET /models`` answers 200 within ``timeout``."""
        return self._transport.probe(Call("GET", self._models_path), timeout) == 200

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        return await self._transport.aprobe(Call("GET", self._models_path), timeout) == 200

    def _models_from(self, response: httpx.Response) -> list[ModelInfo]:
        try:
            entries = response.json()["data"]
            models = []
            for entry in entries:
                # Only OpenRouter's listing says what a model can do.
                described = "supported_parameters" in entry or "context_length" in entry
                capabilities = profiles.from_openrouter(entry) if described else None
                models.append(
                    ModelInfo(
                        id=entry["id"],
                        provider=self.provider,
                        name=entry.get("name"),
                        context_window=capabilities.context_window if capabilities else None,
                        capabilities=capabilities,
                        raw=entry,
                    )
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed model list", provider=self.provider.value
            ) from exc
        self._model_capabilities.update(
            {model.id: model.capabilities for model in models if model.capabilities is not None}
        )
        return models

    # -- request ----------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        return read_api_key(self.provider.value, self.api_key_env, self._env)

    def share_lessons(self, shared: LessonStore, endpoint: str) -> None:
        """Share what refusals teach with every process on ``shared`` (`Lessons.share`)."""
        self._lessons.share(shared, endpoint)

    def key_fingerprint(self) -> str | None:
        """A fingerprint of the API key this client sends (rate budgets count per key);
        None when it sends none or the key is missing."""
        try:
            return fingerprint_of_key(self._api_key())
        except ProviderError:
            return None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._extra_headers}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _call(self, body: dict[str, Any], model: str) -> Call:
        return Call("POST", self._chat_path, model, body)

    def _embeddings_call(self, texts: list[str], model: str) -> Call:
        return Call("POST", self._embeddings_path, model, embeddings_body(texts, model))

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        """The request body in this endpoint's dialect (as known now: no network call), with
        what earlier refusals taught for ``model``."""
        emulated = emulates(request, self._dialect.current())
        try:
            body = build_body(
                request.model_copy(update={"tools": None, "tool_choice": None})
                if emulated
                else request,
                model,
                stream=stream,
                max_tokens_field=self._max_tokens_field,
                dialect=self._dialect.current(),
            )
        except CapabilityMismatch as exc:
            raise CapabilityMismatch(
                f"{self.provider.value}: {exc}", provider=self.provider.value, model=model
            ) from exc
        if emulated:
            body = emulated_body(body, request)
        return self._lessons.translated(model, body)

    @staticmethod
    def _read_back(
        request: ChatRequest, body: dict[str, Any], response: ChatResponse
    ) -> ChatResponse:
        return (
            emulated_response(response, forced=is_forced(request))
            if _emulated(request, body)
            else response
        )

    # -- response ---------------------------------------------------------------------------

    def _completion_from(
        self, response: httpx.Response, model: str, max_tokens: int | None = None
    ) -> ChatResponse:
        try:
            data = response.json()
        except ValueError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: chat completion is not JSON",
                provider=self.provider.value,
                model=model,
            ) from exc
        try:
            return parse_completion(data, self.provider, model)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            if _finish_reason(data) == "length" or _used_up(data, max_tokens):
                raise self._cut_off(model) from exc
            raise MalformedResponse(
                f"{self.provider.value}: malformed chat completion: {redact(str(exc))}",
                provider=self.provider.value,
                model=model,
            ) from exc

    def _chunk_from(
        self, event: ServerSentEvent, model: str, tools: ToolCallAssembler
    ) -> ChatChunk:
        try:
            data = json.loads(event.data)
        except ValueError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed stream event",
                provider=self.provider.value,
                model=model,
            ) from exc
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"{self.provider.value}: stream event is not an object",
                provider=self.provider.value,
                model=model,
            )
        choices = data.get("choices") or []
        if "error" in data or (choices and choices[0].get("finish_reason") == "error"):
            raise self._stream_error(data, model)
        try:
            chunk = parse_chunk(data, self.provider, model)
            deltas = [
                tools.add(delta.index, id=delta.id, name=delta.name, arguments=delta.arguments)
                for delta in chunk.tool_call_deltas
            ]
            calls = tools.calls() if chunk.finish_reason is not None and tools else []
        except (ValueError, KeyError, TypeError) as exc:
            if _finish_reason(data) == "length":
                raise self._cut_off(model) from exc
            raise MalformedResponse(
                f"{self.provider.value}: malformed stream chunk: {redact(str(exc))[:200]}",
                provider=self.provider.value,
                model=model,
            ) from exc
        if not deltas and not calls:
            return chunk
        return chunk.model_copy(update={"tool_call_deltas": deltas, "tool_calls": calls})

    def _cut_off(self, model: str) -> BadRequest:
        # Deterministic: asking again with the same max_tokens cuts it off again, so this is
        # the caller's to fix, not a fault to retry.
        return BadRequest(
            f"{self.provider.value}: the tool call was cut off by max_tokens before its "
            "arguments were complete; raise max_tokens",
            provider=self.provider.value,
            model=model,
        )

    def _stream_error(self, data: dict[str, Any], model: str) -> ProviderError:
        """An error sent inside a 200 stream (OpenAI's ``error`` line, OpenRouter's chunk)."""
        message = f"{self.provider.value}: {error_message(data) or 'error in stream'}"
        common: dict[str, Any] = {"provider": self.provider.value, "model": model}
        error = data.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status = (
            int(code)
            if isinstance(code, int) or (isinstance(code, str) and code.isdigit())
            else None
        )
        if status is not None and status < 500:
            return error_class_for_status(status)(message, status_code=status, **common)
        return ProviderUnavailable(message, status_code=status, **common)

    def _error_for_status(self, response: httpx.Response, model: str) -> ProviderError:
        """The forge error of an HTTP error answer: the one status table, refined by the
        body: ``error.code: insufficient_quota`` is out of credit; a 400 or 422, or a 500 whose
        body is a request-validation error (llama-cpp-python's server), is a `BadRequest`
        marked with the request fields it names (`_dialects.rejected`)."""
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        detail = error_message(data) or response.reason_phrase or "error"
        message = f"{self.provider.value}: HTTP {status}: {detail}"
        if error_code(data) == "insufficient_quota":
            # Out of credit (OpenAI sends it as a 429): waiting will not help, like a 402.
            return AuthenticationFailed(
                message, provider=self.provider.value, model=model, status_code=status
            )
        text = error_text(response)
        if status in (400, 422) or (status == 500 and is_validation_error(text)):
            refusal = BadRequest(
                message, provider=self.provider.value, model=model, status_code=status
            )
            return rejected(refusal, rejected_parameters(data, text, _sent_body(response)))
        return status_error(response, message, provider=self.provider.value, model=model)


class _CompletionStream:
    """Chat-completions SSE events -> chunks, with streamed tool calls assembled."""

    def __init__(self, client: OpenAICompatibleClient, model: str) -> None:
        self._client = client
        self._model = model
        self._tools = ToolCallAssembler()
        self.done = False

    def feed(self, item: ServerSentEvent) -> Iterable[ChatChunk]:
        if item.data.strip() == "[DONE]":
            self.done = True
            return ()
        return (self._client._chunk_from(item, self._model, self._tools),)

    def end(self) -> None:
        # A stream may end without [DONE]; the router checks that it said how it finished.
        return None


def _sent_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of the request ``response`` answers ({} when there is none)."""
    try:
        sent = json.loads(response.request.content or b"{}")
    except (RuntimeError, ValueError):
        return {}
    return sent if isinstance(sent, dict) else {}


def _emulated(request: ChatRequest, body: dict[str, Any]) -> bool:
    """Whether ``body`` carries ``request``'s tools emulated (`_tool_emulation`)."""
    return bool(request.tools) and "tools" not in body


def _used_up(data: Any, max_tokens: int | None) -> bool:
    """Whether an answer spent the whole ``max_tokens`` (servers that report a cut-off tool
    call as ``finish_reason: tool_calls``)."""
    usage = data.get("usage") if isinstance(data, dict) else None
    used = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return max_tokens is not None and isinstance(used, int) and used >= max_tokens


def _finish_reason(data: Any) -> str | None:
    """The first choice's ``finish_reason`` of a response or chunk body, if it has one."""
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    reason = choices[0].get("finish_reason")
    return reason if isinstance(reason, str) else None
