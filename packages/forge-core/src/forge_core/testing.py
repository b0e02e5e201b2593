"""A backend to script in tests: answers, streams, tool calls and faults, with no server.

`ScriptedBackend` plays the replies it was given, one per call, and records every call it
was asked (`ScriptedBackend.calls`). Give it to a `Forge` (``Forge(backends=...)``) or to a
framework wrapper (``ForgeChat(backends=...)``, ``ForgeLLM(backends=...)``) under the name of
a deployment of the config, and the router treats it as that deployment: it plans, retries,
opens circuits and falls back exactly as it would for a real server. httpx's
``MockTransport`` and pydantic-ai's ``TestModel`` are the same idea.

Example:
    ```python
    from forge_core import Forge, ProviderUnavailable
    from forge_core.testing import Reply, ScriptedBackend

    local = ScriptedBackend(ProviderUnavailable("down"), provider="ollama")
    cloud = ScriptedBackend("Paris", Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    forge = Forge(backends={"ollama": local, "openai": cloud})
    answer = forge.chat("Capital of France?")
    assert answer.content == "Paris" and answer.route.attempts[0].ok is False
    assert cloud.calls[0].request.messages[0].content == "Capital of France?"
    ```

A reply is a string (the answer's text), a `Reply` (text, tool calls, usage, how it streams,
a fault part-way through a stream), a `ChatResponse` as is, or an exception (a
`forge_core.ProviderError` such as ``RateLimited`` or ``ProviderUnavailable``), raised by
that call. When the script runs out the last reply is played again, so one reply scripts a
model that always answers the same (or a provider that is always down).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from forge_core.backends import profiles
from forge_core.backends.base import AttemptTimeouts
from forge_core.errors import ProviderError, ProviderUnavailable
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    Provider,
    ReasoningPart,
    RouteTrail,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["Call", "Reply", "ScriptedBackend"]

#: What a scripted backend can do unless told otherwise: everything a cloud chat model
#: that embeds can (the ``openai`` entry of the capability table).
DEFAULT_CAPABILITIES = profiles.OPENAI


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``tool_calls`` are `ToolCall`s or ``(name, arguments)`` pairs (ids are made up:
    ``call_0``, ``call_1`` ...). A stream yields ``content`` in ``chunks`` pieces of about
    equal size (fewer only when the text has fewer characters), then the tool calls; with
    ``fail_after`` set, the stream raises ``error`` (default: `ProviderUnavailable`) after
    that many pieces instead of finishing. ``reasoning`` is the model's thinking: the answer's
    `ChatResponse.reasoning`, and one chunk before the text in a stream. ``reasoning_parts``
    plays thinking as a provider that signs it does (`ReasoningPart`s with a ``signature`` or
    ``redacted`` data; the backend's provider is stamped on those that name none): one chunk
    per part's text before the text, and the parts whole on the finish chunk.
    """

    content: str | None = None
    tool_calls: Sequence[ToolCall | tuple[str, Mapping[str, Any]]] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    chunks: int = 3
    fail_after: int | None = None
    error: ProviderError | None = None
    reasoning: str | None = None
    reasoning_parts: Sequence[ReasoningPart] = ()

    def calls(self) -> list[ToolCall]:
        """The tool calls as `ToolCall`s."""
        return [
            call
            if isinstance(call, ToolCall)
            else ToolCall(id=f"call_{index}", name=call[0], arguments=dict(call[1]))
            for index, call in enumerate(self.tool_calls)
        ]


@dataclass(frozen=True)
class Call:
    """One call a `ScriptedBackend` was asked: what kind, for which model, with what."""

    kind: Literal["chat", "stream", "embed"]
    model: str
    request: ChatRequest | None = None
    texts: list[str] = field(default_factory=list)


ScriptItem = str | Reply | ChatResponse | BaseException


class ScriptedBackend:
    """A `forge_core.backends.base.ChatBackend` (and ``EmbeddingBackend``) that plays a script.

    ``provider`` is the kind of the deployment it stands in for: its stream chunks and
    scripted errors name it (the router stamps the deployment's own kind on answers and on a
    stream's last chunk, and the deployment's config decides whether it counts as local), so
    give the same kind. ``endpoint`` keys its circuit breaker and health (default: one per
    instance); ``capabilities`` is what the planner sees (default: tools, JSON, vision,
    embeddings); ``healthy`` is what its health probe answers. ``embedding`` is the vector
    each text gets. Thread-safe: the replies are taken in the order the calls arrive, and a
    scripted exception is raised as a fresh copy each time it is played.

    A copy of a wrapper (``copy.deepcopy(ForgeChat(backends=...))``) keeps this backend
    itself: it stands for a server, so copies share its script and its ``calls``.
    """

    def __init__(
        self,
        *replies: ScriptItem,
        provider: Provider | str = Provider.OPENAI,
        model: str = "scripted",
        endpoint: str | None = None,
        capabilities: Capabilities | None = None,
        healthy: bool = True,
        embedding: Sequence[float] = (1.0, 0.0),
    ) -> None:
        self.provider = Provider(provider)
        self.model = model
        self.base_url = endpoint or f"scripted://{self.provider.value}/{id(self):x}"
        self._capabilities = capabilities or DEFAULT_CAPABILITIES
        self.healthy = healthy
        self._embedding = list(embedding)
        self._script: list[ScriptItem] = list(replies) or [""]
        self._next = 0
        self._lock = threading.Lock()
        #: Every call asked, in order.
        self.calls: list[Call] = []

    def __repr__(self) -> str:
        return f"ScriptedBackend(provider={self.provider.value!r}, endpoint={self.base_url!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> ScriptedBackend:
        # One server, however often the wrapper holding it is copied (and a lock cannot be
        # deep-copied).
        return self

    # -- what the planner asks --------------------------------------------------------------

    def default_model(self) -> str:
        """The model a request that names none gets."""
        return self.model

    def default_embedding_model(self) -> str:
        """The model an embedding request that names none gets."""
        return self.model

    def check_ready(self, model: str) -> None:
        """Always ready (script a fault as a reply instead)."""

    def capabilities(self, model: str) -> Capabilities:
        """The capabilities given at construction, for every model."""
        return self._capabilities

    def health(self, timeout: float = 1.0) -> bool:
        """``healthy``."""
        return self.healthy

    async def ahealth(self, timeout: float = 1.0) -> bool:
        """``healthy``."""
        return self.healthy

    # -- calls ------------------------------------------------------------------------------

    def _take(self, call: Call) -> ScriptItem:
        with self._lock:
            self.calls.append(call)
            item = self._script[min(self._next, len(self._script) - 1)]
            self._next += 1
        if isinstance(item, BaseException):
            raise _fresh(item)
        return item

    def _response(self, item: ScriptItem, model: str) -> ChatResponse:
        if isinstance(item, ChatResponse):
            return item.model_copy(update={"route": RouteTrail()})
        reply = item if isinstance(item, Reply) else Reply(content=str(item))
        calls = reply.calls()
        parts = [self._stamped(part) for part in reply.reasoning_parts]
        return ChatResponse(
            content=reply.content,
            reasoning=reply.reasoning,
            reasoning_parts=parts,
            tool_calls=calls,
            finish_reason=reply.finish_reason or ("tool_calls" if calls else "stop"),
            usage=reply.usage,
            provider=self.provider,
            model=model,
            route=RouteTrail(),
        )

    def _stamped(self, part: ReasoningPart) -> ReasoningPart:
        signed = part.signature is not None or part.redacted is not None
        if not signed or part.provider is not None:
            return part
        return part.model_copy(update={"provider": self.provider})

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """The next scripted reply as one answer."""
        return self._response(self._take(Call("chat", model, request)), model)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        return self.chat(request, model, timeouts)

    def _stream_failure(self, reply: Reply) -> ProviderError:
        if reply.error is not None:
            return _fresh(reply.error)
        return ProviderUnavailable(
            f"{self.provider.value}: scripted stream failure", provider=self.provider.value
        )

    def _chunks(self, item: ScriptItem, model: str) -> Generator[ChatChunk, None, None]:
        reply = item if isinstance(item, Reply) else None
        response = self._response(item, model)
        # A scripted ChatResponse streams as what it says: its model, and a finish reason
        # even when it gives none (a stream that ends without one reads as truncated).
        served = response.model
        finish_reason = response.finish_reason or ("tool_calls" if response.tool_calls else "stop")
        parts = _pieces(response.content or "", reply.chunks if reply is not None else 3)
        fail_after = reply.fail_after if reply is not None else None
        signed = [p for p in response.reasoning_parts if p.signature or p.redacted]
        for thought in [p.text for p in signed] if signed else [response.reasoning or ""]:
            if thought:
                yield ChatChunk(reasoning=thought, provider=self.provider, model=served)
        for index, part in enumerate(parts):
            if reply is not None and fail_after is not None and index >= fail_after:
                raise self._stream_failure(reply)
            yield ChatChunk(content=part, provider=self.provider, model=served)
        if reply is not None and fail_after is not None and fail_after >= len(parts):
            raise self._stream_failure(reply)
        for index, call in enumerate(response.tool_calls):
            yield ChatChunk(
                tool_call_deltas=[
                    ToolCallDelta(
                        index=index,
                        id=call.id,
                        name=call.name,
                        arguments=json.dumps(call.arguments),
                    )
                ],
                provider=self.provider,
                model=served,
            )
        yield ChatChunk(
            finish_reason=finish_reason,
            tool_calls=response.tool_calls,
            reasoning_parts=signed,
            usage=response.usage,
            provider=self.provider,
            model=served,
        )

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The next scripted reply in pieces; the last chunk has the finish reason."""
        item = self._take(Call("stream", model, request))
        yield from self._chunks(item, model)

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        item = self._take(Call("stream", model, request))
        for chunk in self._chunks(item, model):
            yield chunk

    def embed(self, texts: list[str], model: str, timeouts: AttemptTimeouts) -> EmbeddingResponse:
        """``embedding`` for every text (a scripted exception is raised instead)."""
        self._take(Call("embed", model, texts=list(texts)))
        return EmbeddingResponse(
            vectors=[list(self._embedding) for _ in texts], provider=self.provider, model=model
        )

    async def aembed(
        self, texts: list[str], model: str, timeouts: AttemptTimeouts
    ) -> EmbeddingResponse:
        """Async `embed`."""
        return self.embed(texts, model, timeouts)


def _pieces(text: str, count: int) -> list[str]:
    """``text`` in ``count`` pieces whose lengths differ by one at most (one per character
    when it has fewer; none when it is empty)."""
    if not text:
        return []
    count = min(max(count, 1), len(text))
    size, longer = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < longer else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


_E = TypeVar("_E", bound=BaseException)


def _fresh(error: _E) -> _E:
    """``error`` to raise once more: a copy, so each raise starts a traceback of its own.

    Raising one exception object again appends the new frames to its ``__traceback__`` (it
    grows with every call of a backend that is always down and keeps every frame alive), and
    two threads raising it at once would share that state. An exception that cannot be
    copied (its ``__init__`` needs more than its args) is raised itself, traceback reset.
    """
    try:
        fresh = copy.copy(error)
    except Exception:
        return error.with_traceback(None)
    return fresh if type(fresh) is type(error) else error.with_traceback(None)
