"""The protocol every provider backend implements, and the deadline passed to each attempt."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from forge_core.errors import ForgeTimeout
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    ModelRequirements,
    Provider,
)

__all__ = [
    "DEFAULT_HEALTH_TIMEOUT",
    "AttemptTimeouts",
    "ChatBackend",
    "DialectReport",
    "EmbeddingBackend",
    "InProcessModel",
    "InProcessRuntime",
    "LessonStore",
    "ModelCatalog",
    "ModelDescriber",
    "ModelInfo",
    "ModelOrdering",
    "ResidentModelsReport",
]

#: Seconds a health probe may take (docs/behaviour.md, Health: a cheap probe with a short timeout).
DEFAULT_HEALTH_TIMEOUT = 1.0


@dataclass(frozen=True)
class AttemptTimeouts:
    """Deadlines for one attempt.

    ``read`` bounds the wait for the first token and between chunks; ``total_deadline`` is a
    ``time.monotonic()`` instant that bounds the whole request, fallbacks included.
    ``while_waiting``, when set, is the router's work to do once the request has been sent and
    its answer is awaited (forge's telemetry starts the attempt's spans then, on time the
    caller spends waiting anyway); an HTTP backend calls it then, others never. It never raises.
    """

    connect: float
    read: float
    total_deadline: float
    while_waiting: Callable[[], None] | None = None

    def remaining(self) -> float:
        """Seconds left before the total deadline; raises `ForgeTimeout` when none are."""
        left = self.total_deadline - time.monotonic()
        if left <= 0:
            raise ForgeTimeout("total deadline passed", timeout_seconds=0.0)
        return left

    def read_timeout(self) -> float:
        """The read timeout to use now: the per-read limit capped by the total deadline."""
        return min(self.read, self.remaining())


@runtime_checkable
class ChatBackend(Protocol):
    """One provider endpoint that can answer chat requests.

    ``check_ready`` runs before any network call and raises when the candidate cannot be used
    at all (no API key, missing extra, model file absent); the router records that as a drop.
    """

    provider: Provider

    def default_model(self) -> str:
        """The model used when the request names none for this provider."""
        ...

    def check_ready(self, model: str) -> None:
        """Raise a `ProviderError` if this backend cannot serve ``model`` without trying."""
        ...

    def capabilities(self, model: str) -> Capabilities:
        """What ``model`` can do here, known without a network call (cached metadata at most)."""
        ...

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer (the router fills in ``route``, keeping its ``notes``)."""
        ...

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks; the router adds the route to the last one (with the
        ``notes`` of any chunk's ``route``)."""
        ...

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        ...

    def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        ...


@runtime_checkable
class EmbeddingBackend(Protocol):
    """A `ChatBackend` whose endpoint also turns texts into vectors.

    The router sends embedding requests only to backends that implement this and whose
    `ChatBackend.capabilities` say ``embeddings`` for the model; breakers, health, retries and
    metrics are the endpoint's, shared with chat.
    """

    provider: Provider

    def default_embedding_model(self) -> str:
        """The model that embeds when the request names none for this provider."""
        ...

    def embed(self, texts: list[str], model: str, timeouts: AttemptTimeouts) -> EmbeddingResponse:
        """One vector per text, in order (the router fills in ``route``)."""
        ...

    async def aembed(
        self, texts: list[str], model: str, timeouts: AttemptTimeouts
    ) -> EmbeddingResponse:
        """Async `embed`."""
        ...


@runtime_checkable
class ModelOrdering(Protocol):
    """A backend with a preferred order of chat models, tried in turn when a request names
    none (Ollama's ``preferred_models``, filtered by what the server has pulled)."""

    def model_order(self) -> tuple[str, ...]:
        """The models to try, best first; known without a network call."""
        ...


@runtime_checkable
class ResidentModelsReport(Protocol):
    """A backend whose server can say which models it has in memory now (Ollama's
    ``/api/ps``): balancing prefers a deployment where the model is loaded, and a cold start
    gets its load allowance."""

    def loaded_models(self, timeout: float | None = None) -> list[str]:
        """The names of the models loaded now (a network call bounded by ``timeout``; None:
        the backend's health-check timeout); raises a `ProviderError` when it cannot say."""
        ...


@runtime_checkable
class ModelDescriber(Protocol):
    """A backend whose server describes each model when asked (Ollama's ``/api/show``; what
    llama-server's ``/props`` and LM Studio's ``/api/v0/models`` report a model takes): until
    it has, `ChatBackend.capabilities` are its kind's defaults, which may be wrong about a
    need beyond plain text (an Ollama model that sees, or cannot think; a llama-server without
    a vision projector).

    The planner asks `should_describe` of each candidate it reaches and, when it says so,
    `describe` first (sync requests) or `adescribe` before planning (async requests,
    `Planner.aready`); a plain text request asks nothing of the server.
    """

    def should_describe(self, model: str, needs: ModelRequirements) -> bool:
        """Whether planning ``needs`` on ``model`` should ask the server first: ``needs`` holds
        something the defaults may get wrong and the server has not told yet (nor failed to,
        lately). No network call."""
        ...

    def describe(self, model: str) -> None:
        """Ask the server what ``model`` can do, within the health-check timeout, so that
        `ChatBackend.capabilities` answers from what it says; a failure leaves the defaults and
        is not asked again for a while. Never raises."""
        ...

    async def adescribe(self, model: str) -> None:
        """Async `describe`."""
        ...


@runtime_checkable
class LessonStore(Protocol):
    """Where a backend shares what an endpoint taught it (a parameter it refused, the form
    it took instead) with the other processes of a fleet: the fleet's shared state."""

    def save_lesson(self, endpoint: str, model: str, kind: str, name: str) -> None:
        """Remember what a refusal taught about ``model`` at ``endpoint``: a ``translation``
        it accepts, or an ``unsupported`` feature."""
        ...

    def lessons(self, endpoint: str, model: str) -> tuple[frozenset[str], frozenset[str]]:
        """The fleet's lessons of ``model`` at ``endpoint``: (translations, unsupported)."""
        ...


class ModelInfo(BaseModel):
    """One model a provider lists: its id, and what its listing says it can do.

    ``capabilities`` is None when the listing says nothing about them (OpenAI's ``/models``);
    ``raw`` keeps the provider's own entry for callers that need more.
    """

    id: str
    provider: Provider
    name: str | None = None
    context_window: int | None = None
    capabilities: Capabilities | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class ModelCatalog(Protocol):
    """A backend that can list its models and probe its health over the network.

    Separate from `ChatBackend` so in-process backends need not pretend to have an endpoint;
    every HTTP client implements both. ``health`` never raises: a probe that fails is False.
    """

    provider: Provider

    def list_models(self) -> list[ModelInfo]:
        """The models this endpoint serves (raises a `ProviderError` when it cannot say)."""
        ...

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        ...

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """True when the endpoint answers a cheap, unbilled probe within ``timeout`` seconds."""
        ...

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        ...


# -- what a backend says about itself (``forge health``, ``forge models``) ------------------------


@runtime_checkable
class DialectReport(Protocol):
    """A backend that speaks one of several dialects of a wire format (every OpenAI-compatible
    client, Ollama's ``/v1`` one included): which one, configured or identified from what the
    server says about itself (docs/providers.md)."""

    @property
    def dialect(self) -> str | None:
        """The dialect's name when configured or identified already; None until identified
        (no network call)."""
        ...

    def dialect_name(self) -> str:
        """The dialect's name, identifying the server first if nobody has yet (a few unbilled
        GETs, once per endpoint)."""
        ...


@dataclass(frozen=True)
class InProcessModel:
    """One model an in-process backend is set up to run: its name, the size of its file (None
    for a model directory or a file not on disk), what it can do, and whether it is loaded."""

    name: str
    size_bytes: int | None
    capabilities: Capabilities
    loaded: bool


@runtime_checkable
class InProcessRuntime(Protocol):
    """A backend whose models run in this process (or in worker processes of its own): it has
    no endpoint to probe or list, so it answers for its runtime and its models itself."""

    def runtime_verdict(self) -> tuple[str, str]:
        """``up`` or ``down`` for the default model's runtime on this machine, and why (checked
        for real once per process); raises the `ProviderError` of ``check_ready`` when the model
        or its runtime is missing."""
        ...

    def isolation_description(self) -> str:
        """Where this backend's models run, in words."""
        ...

    def loaded_model_names(self) -> list[str]:
        """The names of the models loaded now (empty: the first request loads one)."""
        ...

    def in_process_models(self) -> list[InProcessModel]:
        """The configured models (else the embedded one), each resolved on disk; raises a
        `ProviderError` when one cannot be found."""
        ...
