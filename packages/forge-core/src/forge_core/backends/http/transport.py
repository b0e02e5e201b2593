"""The one HTTP transport every provider client sends through.

A client builds a `Call` (pure: method, path, body) and parses what comes back (pure: a
response, or stream items fed to a `StreamParser`); the `Transport` does the I/O, sync and
async, on the pooled httpx clients. Every httpx error becomes a forge error here, by
`transport_error`, and every HTTP error status by the client's own status translator (the one
table `error_class_for_status`, refined from the provider's error body), so the sync and async
paths and both stream iterators translate alike. Stream items are Server-Sent Events
(``httpx_sse.ServerSentEvent``) or NDJSON objects (``dict``), by `Call.events`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

import httpx
from httpx_sse import EventSource, SSEError

from forge_core.backends.base import AttemptTimeouts
from forge_core.backends.common import timeout_extension, transport_error
from forge_core.backends.http.pool import ClientPool, default_pool
from forge_core.errors import MalformedResponse, ProviderError, ProviderUnavailable
from forge_core.types import ChatChunk, Provider

__all__ = ["Call", "StatusTranslator", "StreamParser", "Transport", "join_url"]

#: Paths a transport keeps the absolute URL of (a client uses a handful).
_MAX_URLS = 64
#: The httpcore trace event (``http11.`` or ``http2.`` before it) after which a request has
#: been sent and its answer is awaited: when `AttemptTimeouts.while_waiting` runs.
_AWAITING_ANSWER = "receive_response_headers.started"

#: The client's translator of an HTTP error response into a forge error (for ``model``).
StatusTranslator = Callable[[httpx.Response, str], ProviderError]


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request a client wants made.

    ``model`` is only for error attribution; ``events`` says how a streamed body is framed.
    """

    method: str
    path: str
    model: str = ""
    json: Any = None
    params: Mapping[str, Any] | None = None
    events: Literal["sse", "ndjson"] = "sse"


def join_url(base_url: httpx.URL, path: str) -> httpx.URL:
    """``path`` on a client with ``base_url``, as ``httpx.Client.build_request`` merges them: an
    absolute URL as it is, else appended to the base URL's path (which gets a trailing ``/``)."""
    url = httpx.URL(path)
    if not url.is_relative_url:
        return url
    base_path = base_url.raw_path if base_url.raw_path.endswith(b"/") else base_url.raw_path + b"/"
    return base_url.copy_with(raw_path=base_path + url.raw_path.lstrip(b"/"))


def _while_waiting(work: Callable[[], None], *, asynchronous: bool) -> Callable[..., Any]:
    """httpcore's ``trace`` extension (a coroutine function for an async client, as httpcore
    requires) that runs ``work`` once the request is sent, before its answer is read.

    It then takes itself off the request (httpcore hands each event the request in ``info``
    and looks the extension up afresh for each step), so httpcore stops calling it for the
    rest of the exchange: about half of its ten calls a request, on the caller's time.
    """

    def fire(event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(_AWAITING_ANSWER):
            request = info.get("request")
            if request is not None:
                request.extensions.pop("trace", None)
            work()

    if asynchronous:

        async def atrace(event: str, info: Mapping[str, Any]) -> None:
            fire(event, info)

        return atrace
    return fire


class StreamParser(Protocol):
    """Turns one stream's items into chunks; written once, fed by the sync and async paths.

    ``done`` becomes True on the item that ends the stream; ``end`` runs when the body ended
    and raises when it ended too early (a truncated stream).
    """

    done: bool

    def feed(self, item: Any) -> Iterable[ChatChunk]:
        """The chunks one item yields (raises a `ProviderError` on an in-stream error)."""
        ...

    def end(self) -> None:
        """Called when the body ended before ``done``; raise if that is a truncation."""
        ...


class _Translated:
    """Turns httpx (and SSE framing) errors raised in its block into forge errors."""

    __slots__ = ("_call", "_timeouts", "_transport")

    def __init__(
        self, transport: Transport, call: Call, timeouts: AttemptTimeouts | float | None
    ) -> None:
        self._transport = transport
        self._call = call
        self._timeouts = timeouts

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, httpx.HTTPError):
            raise self._transport.transport_error(exc, self._call.model, self._timeouts) from exc
        if isinstance(exc, SSEError):
            raise MalformedResponse(
                f"{self._transport.provider.value}: expected an event stream: {exc}",
                provider=self._transport.provider.value,
                model=self._call.model,
            ) from exc


class Transport:
    """Sends `Call`s to ``base_url`` with the client's headers; one per client.

    ``headers`` runs per request (so API keys are read at call time and never stored);
    ``status_error`` translates an HTTP error response; ``unavailable`` is the error class of
    an endpoint nothing answers at; ``timeout_seconds`` bounds calls made without an
    attempt's deadlines (listing, admin).
    """

    def __init__(
        self,
        provider: Provider,
        base_url: str,
        *,
        headers: Callable[[], dict[str, str]],
        status_error: StatusTranslator,
        unavailable: type[ProviderUnavailable] = ProviderUnavailable,
        timeout_seconds: float = 60.0,
        pool: ClientPool | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url
        self._headers = headers
        self._status_error = status_error
        self._unavailable = unavailable
        self.timeout_seconds = timeout_seconds
        self._pool = pool or default_pool
        # Each path's absolute URL, with the base URL it was joined to (`_url`).
        self._urls: dict[str, tuple[httpx.URL, httpx.URL]] = {}

    # -- one response -------------------------------------------------------------------------

    def send(self, call: Call, timeouts: AttemptTimeouts | float | None = None) -> httpx.Response:
        """The complete response to ``call``; an error status raises its forge error."""
        with _Translated(self, call, timeouts):
            client = self._pool.sync_client(self.base_url)
            response = client.request(**self._args(client, call, timeouts))
            response.read()
        return self._checked(response, call)

    async def asend(
        self, call: Call, timeouts: AttemptTimeouts | float | None = None
    ) -> httpx.Response:
        """Async `send`."""
        with _Translated(self, call, timeouts):
            client = self._pool.async_client(self.base_url)
            response = await client.request(**self._args(client, call, timeouts))
            await response.aread()
        return self._checked(response, call)

    def probe(self, call: Call, timeout: float) -> int | None:
        """The status ``call`` answers with inside ``timeout`` seconds; None when it does not
        (no connection, no key, too slow). Never raises a forge error."""
        try:
            client = self._pool.sync_client(self.base_url)
            return client.request(**self._args(client, call, timeout)).status_code
        except (ProviderError, httpx.HTTPError):
            return None

    async def aprobe(self, call: Call, timeout: float) -> int | None:
        """Async `probe`."""
        try:
            client = self._pool.async_client(self.base_url)
            return (await client.request(**self._args(client, call, timeout))).status_code
        except (ProviderError, httpx.HTTPError):
            return None

    # -- streams ------------------------------------------------------------------------------

    def items(
        self, call: Call, timeouts: AttemptTimeouts | None = None
    ) -> Generator[Any, None, None]:
        """The decoded items of a streamed response (events or NDJSON objects), in order.

        After each item the attempt's total deadline is checked, so a server that keeps
        sending slowly cannot outlive it.
        """
        client = self._pool.sync_client(self.base_url)
        with (
            _Translated(self, call, timeouts),
            client.stream(**self._args(client, call, timeouts)) as got,
        ):
            if got.is_error:
                got.read()
            self._checked(got, call)
            source = EventSource(got).iter_sse() if call.events == "sse" else got.iter_lines()
            for raw in source:
                yield from self._decoded(raw, call, timeouts)

    async def aitems(
        self, call: Call, timeouts: AttemptTimeouts | None = None
    ) -> AsyncGenerator[Any, None]:
        """Async `items`."""
        client = self._pool.async_client(self.base_url)
        with _Translated(self, call, timeouts):
            async with client.stream(**self._args(client, call, timeouts)) as got:
                if got.is_error:
                    await got.aread()
                self._checked(got, call)
                source = EventSource(got).aiter_sse() if call.events == "sse" else got.aiter_lines()
                async for raw in source:
                    for item in self._decoded(raw, call, timeouts):
                        yield item

    def stream(
        self, call: Call, timeouts: AttemptTimeouts, parser: StreamParser
    ) -> Generator[ChatChunk, None, None]:
        """The chunks ``parser`` makes of the streamed response to ``call``."""
        for item in self.items(call, timeouts):
            yield from parser.feed(item)
            if parser.done:
                return
        parser.end()

    async def astream(
        self, call: Call, timeouts: AttemptTimeouts, parser: StreamParser
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`; closing it closes the upstream response at once."""
        async with aclosing(self.aitems(call, timeouts)) as items:
            async for item in items:
                for chunk in parser.feed(item):
                    yield chunk
                if parser.done:
                    return
        parser.end()

    # -- shared -------------------------------------------------------------------------------

    def transport_error(
        self, exc: httpx.HTTPError, model: str, timeouts: AttemptTimeouts | float | None
    ) -> ProviderError:
        """The forge error for an httpx failure of a call for ``model``."""
        if isinstance(timeouts, AttemptTimeouts):
            connect, read = timeouts.connect, timeouts.read
        else:
            connect = read = self.timeout_seconds if timeouts is None else timeouts
        return transport_error(
            exc,
            where=f"{self.provider.value} at {self.base_url}",
            provider=self.provider.value,
            model=model,
            connect_seconds=connect,
            read_seconds=read,
            unavailable=self._unavailable,
        )

    def _args(
        self,
        client: httpx.Client | httpx.AsyncClient,
        call: Call,
        timeouts: AttemptTimeouts | float | None,
    ) -> dict[str, Any]:
        if isinstance(timeouts, AttemptTimeouts):
            timeout = timeout_extension(timeouts)
        else:
            seconds = self.timeout_seconds if timeouts is None else timeouts
            timeout = {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
        # httpx's own form of a request's timeout (what `httpx.Timeout` becomes), so the
        # client does not build and convert a `Timeout` per request.
        extensions: dict[str, Any] = {"timeout": timeout}
        if isinstance(timeouts, AttemptTimeouts) and timeouts.while_waiting is not None:
            extensions["trace"] = _while_waiting(
                timeouts.while_waiting, asynchronous=isinstance(client, httpx.AsyncClient)
            )
        return {
            "method": call.method,
            "url": self._url(client, call.path),
            "json": call.json,
            "params": call.params,
            "headers": self._headers(),
            "extensions": extensions,
        }

    def _url(self, client: httpx.Client | httpx.AsyncClient, path: str) -> httpx.URL:
        """``path`` joined to ``client``'s base URL as httpx joins it, once per path and client:
        an absolute `httpx.URL` is sent as it is, so no request parses the URL again."""
        base = client.base_url
        known = self._urls.get(path)
        if known is not None and known[0] is base:
            return known[1]
        url = join_url(base, path)
        if len(self._urls) < _MAX_URLS:
            self._urls[path] = (base, url)
        return url

    def _checked(self, response: httpx.Response, call: Call) -> httpx.Response:
        if response.status_code >= 400:
            raise self._status_error(response, call.model)
        return response

    def _decoded(self, raw: Any, call: Call, timeouts: AttemptTimeouts | None) -> Iterable[Any]:
        if timeouts is not None:
            timeouts.remaining()
        if call.events == "sse":
            return (raw,)
        if not raw.strip():
            return ()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise self._malformed("malformed NDJSON line", call) from exc
        if not isinstance(data, dict):
            raise self._malformed("NDJSON line is not an object", call)
        return (data,)

    def _malformed(self, message: str, call: Call) -> MalformedResponse:
        return MalformedResponse(
            f"{self.provider.value}: {message}", provider=self.provider.value, model=call.model
        )
