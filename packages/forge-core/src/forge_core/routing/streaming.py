"""Streaming: what a routed stream has said, and the sync bridge over the async stream.

The router streams asynchronously only (`Router.astream`); `in_background` runs that stream on
forge's background event loop for sync callers, because a blocked socket read cannot be
interrupted from a sync generator while a task can be cancelled. `YieldedSoFar` and `StreamState`
keep what the caller has seen, across candidates, so a failover after the first token is either
`StreamInterrupted` with exactly that text or (``routing.midstream: continue``) a continuation
whose repeat of it is cut.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncGenerator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from forge_core.routing.breaker import Ticket
from forge_core.types import (
    ChatChunk,
    ChatRequest,
    Message,
    Provider,
    ReasoningPart,
    ToolCall,
    Usage,
)

__all__ = [
    "CONTINUE_PROMPT",
    "OpenedStream",
    "StreamState",
    "YieldedSoFar",
    "continuation",
    "has_token",
    "in_background",
]

#: What the next candidate is asked after a stream died mid-answer (``midstream: continue``).
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without "
    "repeating anything already written."
)

#: How long closing a sync stream early waits for the upstream connection to be closed.
_CLOSE_WAIT_SECONDS = 10.0

_T = TypeVar("_T")


def has_token(chunk: ChatChunk) -> bool:
    """Whether ``chunk`` carries content, reasoning or a tool-call fragment (what failover
    stops at)."""
    return bool(chunk.content or chunk.tool_call_deltas or chunk.reasoning)


def continuation(request: ChatRequest, partial: str) -> ChatRequest:
    """``request`` with the partial answer and `CONTINUE_PROMPT` appended."""
    messages = [
        *request.messages,
        Message(role="assistant", content=partial),
        Message(role="user", content=CONTINUE_PROMPT),
    ]
    return request.model_copy(update={"messages": messages})


@dataclass
class OpenedStream(Generic[_T]):
    """A stream that has produced its first token (or ended without one)."""

    chunks: _T
    ticket: Ticket
    started: float
    buffered: list[ChatChunk] = field(default_factory=list)
    done: bool = False
    ttft_ms: float | None = None


class YieldedSoFar:
    """Everything yielded to the caller so far, across candidates (for ``midstream``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.tool_calls = False
        self.reasoning = False

    @property
    def text(self) -> str:
        """The text yielded so far."""
        return "".join(self.parts)

    @property
    def started(self) -> bool:
        """Whether anything (text, reasoning or a tool-call fragment) reached the caller."""
        return bool(self.parts) or self.tool_calls or self.reasoning


class StreamState:
    """One candidate's stream: what it said, its finish reason and usage.

    A continuation that starts by repeating what was already said has the repeat cut, so the
    caller never sees a duplicated answer.
    """

    def __init__(self, said: YieldedSoFar) -> None:
        self._said = said
        self._repeat_of = said.text
        self._held = ""
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []
        self.model: str | None = None
        self.provider: Provider | None = None
        self.spoke = False
        self._reasoning: list[str] = []
        self._reasoning_parts: list[ReasoningPart] = []

        #: What the provider's chunks noted for the route (`RouteTrail.notes`).
        self.notes: list[str] = []

    @property
    def reasoning_parts(self) -> list[ReasoningPart]:
        """The stream's thinking whole: the parts the provider's finish chunk carried (signed
        ones: Anthropic), else the pieces joined into one unsigned part."""
        if self._reasoning_parts:
            return self._reasoning_parts
        joined = "".join(self._reasoning)
        return [ReasoningPart(text=joined)] if joined else []

    def take(self, chunk: ChatChunk) -> Iterator[ChatChunk]:
        """Record ``chunk``; yield what to pass on (content, reasoning and tool deltas only)."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.tool_calls:
            # The provider's finish chunk carries the streamed tool calls assembled.
            self.tool_calls = list(chunk.tool_calls)
        if chunk.reasoning_parts:
            self._reasoning_parts = list(chunk.reasoning_parts)
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        if chunk.route is not None and chunk.route.notes:
            self.notes.extend(chunk.route.notes)
        self.model = chunk.model
        self.provider = chunk.provider
        if not has_token(chunk):
            return
        self.spoke = True
        content = chunk.content
        if self._repeat_of and content:
            self._held += content
            if self._repeat_of.startswith(self._held) and len(self._held) < len(self._repeat_of):
                return
            content = self._release()
        if chunk.tool_call_deltas:
            self._said.tool_calls = True
        if chunk.reasoning:
            self._said.reasoning = True
        if content:
            self._said.parts.append(content)
        elif not chunk.tool_call_deltas and not chunk.reasoning:
            return
        yield chunk.model_copy(
            update={
                "content": content,
                "usage": None,
                "finish_reason": None,
                "route": None,
                "reasoning_parts": [],
            }
        )

    def _release(self) -> str:
        held, repeat = self._held, self._repeat_of
        self._held = self._repeat_of = ""
        return held[len(repeat) :] if held.startswith(repeat) else held

    def flush(self) -> Iterator[ChatChunk]:
        """Whatever a continuation still holds back when its stream ends."""
        if self._held and self.provider is not None:
            content = self._release()
            if content:
                self._said.parts.append(content)
                yield ChatChunk(content=content, provider=self.provider, model=self.model or "")


def in_background(chunks: AsyncGenerator[_T, None]) -> Generator[_T, None, None]:
    """Iterate ``chunks`` on forge's background event loop, from sync code.

    One task drains the stream into a queue: a single hand-off per item, instead of a round
    trip through the loop for each one. Closing the returned generator early cancels the task
    (which closes the upstream connection) and waits for that cleanup, bounded.
    """
    handoff: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    drained = threading.Event()

    async def drain() -> None:
        try:
            async for chunk in chunks:
                handoff.put(("chunk", chunk))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            handoff.put(("error", exc))
        else:
            handoff.put(("end", None))
        finally:
            drained.set()

    task = asyncio.run_coroutine_threadsafe(drain(), _background_loop())
    try:
        while True:
            kind, item = handoff.get()
            if kind == "chunk":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        if not drained.is_set():
            task.cancel()
            drained.wait(timeout=_CLOSE_WAIT_SECONDS)


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    """The event loop (in a daemon thread) that drives sync streams; started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="forge-sync-streams", daemon=True
            ).start()
            _loop = loop
        return _loop
