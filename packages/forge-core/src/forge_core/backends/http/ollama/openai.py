"""`OllamaOpenAIClient`: Ollama through its OpenAI-compatible ``/v1`` surface (``api: openai``,
the default, which other servers with that surface also answer); listing, health and
capabilities through the native admin API (`AdminBackedClient`).

Ollama's ``/v1`` has no ``num_ctx``: it loads a model with the server's default context and
cuts a longer prompt without an error. So a request that will not fit that context, or that
sets one of Ollama's native options (``num_ctx``, ``keep_alive``, ``repeat_penalty``), goes
through the native ``/api/chat`` of the same server (`OllamaClient`, sized per request) when the
server has it; when it has not, a request that will not fit fails here as a capability mismatch
(the router tries the next candidate) and the planner then drops this deployment for long
prompts (`capabilities`). An answer whose prompt token count shows the prompt was cut anyway is
noted on its route (`noted_if_cut`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from contextlib import aclosing
from typing import Any

from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts
from forge_core.backends.http.ollama.admin import OllamaAdmin
from forge_core.backends.http.ollama.admin_backed import (
    DEFAULT_OLLAMA_EMBEDDING_MODEL,
    OLLAMA_DEFAULT_NUM_CTX,
    AdminBackedClient,
)
from forge_core.backends.http.ollama.native import (
    OllamaClient,
    context_need,
    noted_if_cut,
)
from forge_core.backends.http.ollama.wire import check_parts
from forge_core.backends.http.openai.client import OpenAICompatibleClient
from forge_core.backends.http.pool import ClientPool
from forge_core.errors import CapabilityMismatch, OllamaUnavailable
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ModelRequirements,
    Provider,
    RouteTrail,
)

__all__ = ["NATIVE_ONLY_OPTIONS", "OllamaOpenAIClient"]

#: The request options only Ollama's native API takes: a request setting one goes native.
NATIVE_ONLY_OPTIONS = frozenset({"num_ctx", "keep_alive", "repeat_penalty"})


class OllamaOpenAIClient(AdminBackedClient, OpenAICompatibleClient):
    """Chat through Ollama's OpenAI-compatible ``/v1/chat/completions`` and embeddings through
    ``/v1/embeddings``; listing and health through the native API (`OllamaAdmin`), falling back
    to ``/v1/models`` for health on servers without it.

    ``num_ctx`` is the context the server loads models with for ``/v1`` requests (its
    ``OLLAMA_CONTEXT_LENGTH``; None: Ollama's default, 4096): a request needing more goes
    through the native API. ``dialect="llama-cpp"`` says the server is llama-cpp-python's, not
    Ollama, which has neither the native API nor Ollama's context default: every request then
    goes through ``/v1``.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        default_model: str,
        default_embedding_model: str = DEFAULT_OLLAMA_EMBEDDING_MODEL,
        dialect: str = "openai",
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        num_ctx: int | None = None,
        keep_alive: str | int | None = None,
        preferred_models: Sequence[str] = (),
        auto_discovery: bool = True,
        pool: ClientPool | None = None,
    ) -> None:
        self.preferred_models = tuple(preferred_models)
        self.auto_discovery = auto_discovery
        super().__init__(
            Provider.OLLAMA,
            base_url,
            default_model=default_model,
            default_embedding_model=default_embedding_model,
            chat_path="/v1/chat/completions",
            embeddings_path="/v1/embeddings",
            unavailable_error=OllamaUnavailable,
            capabilities=profiles.OLLAMA,
            dialect=dialect,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )
        self.admin = OllamaAdmin(
            base_url,
            timeout_seconds=timeout_seconds,
            health_check_timeout=health_check_timeout,
            keep_alive=keep_alive,
            v1_health=True,
            pool=pool,
        )
        #: The context ``/v1`` requests run with (the server's default).
        self.v1_context = self.default_context = num_ctx or OLLAMA_DEFAULT_NUM_CTX
        self._ollama = dialect != "llama-cpp"
        #: The native client for the requests ``/v1`` cannot carry: same server, same admin.
        self.native = OllamaClient(
            base_url,
            default_model=default_model,
            default_embedding_model=default_embedding_model,
            timeout_seconds=timeout_seconds,
            health_check_timeout=health_check_timeout,
            num_ctx=num_ctx,
            keep_alive=keep_alive,
            preferred_models=preferred_models,
            auto_discovery=auto_discovery,
            admin=self.admin,
        )

    # -- which path -----------------------------------------------------------------------------

    def capabilities(self, model: str) -> Capabilities:
        """As `AdminBackedClient.capabilities`; on an Ollama server known to lack the native
        API, the context is the ``/v1`` one (`v1_context`), so the planner drops this
        deployment for a prompt that would be cut."""
        known = AdminBackedClient.capabilities(self, model)
        if not self._ollama or self.admin.native_api is not False:
            return known
        window = known.context_window
        if window is not None and window <= self.v1_context:
            return known
        return known.model_copy(update={"context_window": self.v1_context})

    def should_describe(self, model: str, needs: ModelRequirements) -> bool:
        """As `AdminBackedClient.should_describe`; never for llama-cpp-python's server, which
        has no ``/api/show``."""
        return self._ollama and AdminBackedClient.should_describe(self, model, needs)

    def _path(self, request: ChatRequest) -> tuple[bool, bool]:
        """(whether ``request`` would be better served natively, whether it must be: it will
        not fit the ``/v1`` context). No network call."""
        if not self._ollama:
            return False, False
        too_long = context_need(request) > self.v1_context
        if too_long:
            return True, True
        fields = request.__pydantic_fields_set__
        wants = not NATIVE_ONLY_OPTIONS.isdisjoint(fields) and any(
            getattr(request, name) is not None for name in NATIVE_ONLY_OPTIONS & fields
        )
        return wants, False

    def _refuse(self, request: ChatRequest, model: str) -> CapabilityMismatch:
        return CapabilityMismatch(
            f"ollama: the prompt and answer need about {context_need(request)} tokens; Ollama's "
            f"/v1 API runs models with a {self.v1_context}-token context and would cut the "
            "prompt, and this server has no native API to size it (set num_ctx to the "
            "server's OLLAMA_CONTEXT_LENGTH if it has a larger one)",
            provider=Provider.OLLAMA.value,
            model=model,
        )

    def _native_for(self, request: ChatRequest, model: str) -> bool:
        """Whether ``request`` goes through the native API (asking the server once whether it
        has one); raises `CapabilityMismatch` for a request ``/v1`` would cut when it has not."""
        better, must = self._path(request)
        if not better:
            return False
        if self.admin.has_native_api():
            return True
        if must:
            raise self._refuse(request, model)
        return False

    async def _anative_for(self, request: ChatRequest, model: str) -> bool:
        """Async `_native_for`."""
        better, must = self._path(request)
        if not better:
            return False
        if await self.admin.ahas_native_api():
            return True
        if must:
            raise self._refuse(request, model)
        return False

    # -- chat -----------------------------------------------------------------------------------

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One answer, through ``/v1`` or, for what ``/v1`` cannot carry, the native API."""
        if self._native_for(request, model):
            return self.native.chat(request, model, timeouts)
        return self._noted(request, super().chat(request, model, timeouts))

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        if await self._anative_for(request, model):
            return await self.native.achat(request, model, timeouts)
        return self._noted(request, await super().achat(request, model, timeouts))

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """`chat` as chunks."""
        if self._native_for(request, model):
            return self.native.stream(request, model, timeouts)
        return self._noted_chunks(request, super().stream(request, model, timeouts))

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        native = await self._anative_for(request, model)
        chunks = (
            self.native.astream(request, model, timeouts)
            if native
            else super().astream(request, model, timeouts)
        )
        async with aclosing(chunks) as each:
            async for chunk in each:
                yield chunk if native else self._noted_chunk(request, chunk)

    def _noted(self, request: ChatRequest, response: ChatResponse) -> ChatResponse:
        if self._ollama:
            noted_if_cut(response.route, request, response.usage, self.v1_context)
        return response

    def _noted_chunk(self, request: ChatRequest, chunk: ChatChunk) -> ChatChunk:
        if not self._ollama or chunk.usage is None:
            return chunk
        route = RouteTrail()
        noted_if_cut(route, request, chunk.usage, self.v1_context)
        return chunk.model_copy(update={"route": route}) if route.notes else chunk

    def _noted_chunks(
        self, request: ChatRequest, chunks: Iterator[ChatChunk]
    ) -> Generator[ChatChunk, None, None]:
        try:
            for chunk in chunks:
                yield self._noted_chunk(request, chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        # Ollama's /v1 takes images only as base64 data URLs; say so before sending.
        check_parts(request.messages)
        return super()._body(request, model, stream=stream)
