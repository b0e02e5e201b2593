"""Pooled httpx clients: one sync client per base URL, one async client per base URL per loop.

An ``httpx.AsyncClient`` is bound to the event loop that first used its connections; reusing
one across ``asyncio.run`` calls fails in peers. Keying async clients by the running loop keeps
each loop's connections to itself while still pooling within a loop.

Lifecycle (docs/behaviour.md#lifecycle): a loop's clients hold its sockets, and through them
the loop itself, so they must be closed when the loop finishes, or every ``asyncio.run`` leaks
a pool. Two mechanisms, one for each way a loop ends:

- The first client made on a loop starts a tiny async generator on it (`_closes_with_loop`)
  and leaves it suspended. The loop knows it through its async-generator hooks, so the
  loop's ``shutdown_asyncgens()`` (``asyncio.run``, ``asyncio.Runner``, pytest-asyncio and
  asgiref all call it before closing the loop) closes that generator, and its ``finally``
  closes the loop's clients with ``await client.aclose()`` while the loop still runs.
- A loop closed without that (``loop.close()`` alone) is found closed the next time the pool
  is used from a new loop, or when it is closed: its sockets are then closed without the
  loop, which can no longer run (`_close_without_loop`).

`ClientPool.close` (and `aclose`) closes every client the pool holds, whatever loop it is
on: a loop running in another thread closes its clients itself (bounded wait), a stopped one
is run just long enough to close them. A pool that is garbage-collected, or still open when
the interpreter exits, is closed the same way (``weakref.finalize``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx

__all__ = ["ClientPool", "default_pool"]

logger = logging.getLogger("forge.http")

# As wide as the openai SDK: a router on the hot path must not queue requests its peers send.
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30)
#: How long closing a pool waits for a loop running in another thread to close its clients.
_OTHER_LOOP_WAIT_SECONDS = 5.0


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client, as httpx makes it by default (certifi's CA bundle,
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured, as read at the first client). Loading the
    bundle costs ~40 ms a client (more under load), paid once instead of once per host: a
    router with many hosts builds their clients in parallel threads that would otherwise
    wait on each other (a first plan over 50 Ollama hosts: ~1.2 s -> ~0.12 s)."""
    return httpx.create_ssl_context()


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, which reads a response's cookies only when it sets some.

    httpx hands every response to the jar, which first wraps the request in a
    ``urllib.request.Request`` (~15 µs) to find, almost always, no ``Set-Cookie`` header: the
    jar would store nothing then (`http.cookiejar.CookieJar.make_cookies` returns at once).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class _CookieJarOnSetCookie:
    """Gives an httpx client a `_Cookies` jar (for `_Client` and `_AsyncClient` alike)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._forge_cookies = _Cookies(options.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._forge_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._forge_cookies = _Cookies(cookies)


class _Client(_CookieJarOnSetCookie, httpx.Client):
    """An `httpx.Client` whose cookie jar is a `_Cookies`; otherwise httpx's own."""


class _AsyncClient(_CookieJarOnSetCookie, httpx.AsyncClient):
    """An `httpx.AsyncClient` whose cookie jar is a `_Cookies`; otherwise httpx's own."""


class _LoopClients:
    """The async clients of one event loop, and the suspended generator that closes them."""

    __slots__ = ("clients", "closer", "closing", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.closer: AsyncGenerator[None, None] | None = None
        #: Set by whoever starts closing the clients, so it happens once.
        self.closing = False

    def take(self) -> list[httpx.AsyncClient]:
        """The clients, handed over to be closed (the entry keeps none)."""
        clients = list(self.clients.values())
        self.clients.clear()
        return clients


class _State:
    """A pool's clients; kept apart from `ClientPool` so that its finalizer and the loops'
    closing generators can reach them without keeping the pool alive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sync: dict[str, httpx.Client] = {}
        # Keyed by the loop itself (not weakly: the clients reference their loop anyway); an
        # entry leaves when its loop is shut down, found closed, or the pool closes.
        self.loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}

    def forget(self, entry: _LoopClients) -> None:
        with self.lock:
            if self.loops.get(entry.loop) is entry:
                del self.loops[entry.loop]

    def take_closed_loops(self) -> list[_LoopClients]:
        """Remove the entries of loops that are closed (under the lock)."""
        dead = [entry for entry in self.loops.values() if entry.loop.is_closed()]
        for entry in dead:
            del self.loops[entry.loop]
        return dead

    def close(self) -> None:
        """Close every client; see `ClientPool.close`."""
        with self.lock:
            sync = list(self.sync.values())
            self.sync.clear()
            entries = list(self.loops.values())
            self.loops.clear()
        for client in sync:
            client.close()
        for entry in entries:
            _close_elsewhere(entry)


async def _closes_with_loop(state: _State, entry: _LoopClients) -> AsyncGenerator[None, None]:
    """Stays suspended at its ``yield`` for the loop's life. Closing it (the loop's
    ``shutdown_asyncgens``, or the pool) closes the loop's clients, on the loop."""
    try:
        yield
    finally:
        entry.closing = True
        state.forget(entry)
        for client in entry.take():
            try:
                await client.aclose()
            except Exception:  # a connection that broke while closing is closed all the same
                logger.debug("forge: closing a pooled client failed", exc_info=True)


def _start(closer: AsyncGenerator[None, None]) -> None:
    """Run ``closer`` to its ``yield`` now: this registers it with the running loop's
    async-generator hooks (it awaits nothing before the ``yield``, so no loop turn is needed)."""
    with contextlib.suppress(StopIteration):
        closer.asend(None).send(None)


def _finish(closer: AsyncGenerator[None, None] | None) -> None:
    """End a closing generator whose clients were already taken: its ``finally`` then awaits
    nothing, so it ends in this one step and the loop has nothing left to finalize."""
    if closer is None:
        return
    with contextlib.suppress(StopIteration, RuntimeError):
        closer.aclose().send(None)


def _transports(client: httpx.AsyncClient) -> Iterator[asyncio.BaseTransport]:
    """The asyncio transports under ``client``'s connections.

    httpx exposes none of them: this walks httpx's transport (and proxy mounts) to httpcore's
    pool (`connections` is public), each connection's network stream (httpcore's
    ``AnyIOStream``), through TLS wrappers, to anyio's socket stream and its transport. A
    layer that is not there (another httpcore backend, a changed attribute) ends the walk for
    that connection, which the garbage collector then closes as before.
    """
    for transport in [
        getattr(client, "_transport", None),
        *getattr(client, "_mounts", {}).values(),
    ]:
        pool = getattr(transport, "_pool", None)
        for connection in list(getattr(pool, "connections", ())):
            http = getattr(connection, "_connection", None)
            stream: Any = getattr(getattr(http, "_network_stream", None), "_stream", None)
            while hasattr(stream, "transport_stream"):  # anyio's TLSStream
                stream = stream.transport_stream
            found = getattr(stream, "_transport", None)
            if isinstance(found, asyncio.BaseTransport):
                yield found


def _close_without_loop(entry: _LoopClients) -> None:
    """Close the sockets of ``entry``'s clients without running its loop.

    A transport is closed by its loop (``transport.close()`` schedules the socket's close on
    it). A closed loop will never run that, so here it is done as that loop would have: the
    protocol is told the connection is lost and the socket is closed (asyncio's own
    ``_call_connection_lost``; a transport without it is left to the garbage collector). A
    loop that is not closed (stopped, while this thread runs another) gets ``abort()``, which
    closes the sockets at its next turn.
    """
    entry.closing = True
    closed = entry.loop.is_closed()
    for client in entry.take():
        for transport in _transports(client):
            with contextlib.suppress(Exception):
                if not closed:
                    transport.abort()  # type: ignore[attr-defined]
                elif getattr(transport, "_sock", None) is not None:
                    transport._call_connection_lost(None)  # type: ignore[attr-defined]
    _finish(entry.closer)


def _close_elsewhere(entry: _LoopClients) -> None:
    """Close ``entry``'s clients from outside an ``await`` on its loop, however that loop is."""
    if entry.closing:
        return
    loop, closer = entry.loop, entry.closer
    if loop.is_closed() or closer is None:
        _close_without_loop(entry)
        return
    entry.closing = True
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        # close() called from a coroutine of this very loop: it closes them at its next turn.
        _closing_tasks.add(task := loop.create_task(_aclose_on(closer)))
        task.add_done_callback(_closing_tasks.discard)
    elif loop.is_running():
        future = asyncio.run_coroutine_threadsafe(_aclose_on(closer), loop)
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            future.result(_OTHER_LOOP_WAIT_SECONDS)
    elif running is None:
        # A stopped loop (between two run_until_complete calls): run it to close them.
        loop.run_until_complete(_aclose_on(closer))
    else:
        # Stopped, and this thread runs another loop, so it cannot run this one.
        _close_without_loop(entry)


async def _aclose_on(closer: AsyncGenerator[None, None]) -> None:
    await closer.aclose()


#: Closing tasks started on a running loop, kept until done (the loop keeps tasks weakly).
_closing_tasks: set[asyncio.Task[None]] = set()


class ClientPool:
    """Hands out shared httpx clients keyed by base URL (and event loop for async).

    A `Forge` makes one of its own and closes it with itself. Another owner closes it with
    `close` or `aclose`; one that is garbage-collected or still open at interpreter exit is
    closed then. After `close` the pool still works: it makes new clients on demand.
    """

    def __init__(self) -> None:
        self._state = _State()
        self._finalizer = weakref.finalize(self, self._state.close)

    def sync_client(self, base_url: str) -> httpx.Client:
        """The shared sync client for ``base_url``."""
        state = self._state
        with state.lock:
            client = state.sync.get(base_url)
            if client is None or client.is_closed:
                client = state.sync[base_url] = self._new_sync_client(base_url)
            return client

    def _new_sync_client(self, base_url: str) -> httpx.Client:
        """A new sync client for ``base_url`` (a test's pool may answer from memory)."""
        return _Client(base_url=base_url, limits=_LIMITS, verify=_ssl_context())

    def async_client(self, base_url: str) -> httpx.AsyncClient:
        """The shared async client for ``base_url`` on the running event loop."""
        loop = asyncio.get_running_loop()
        entry = self._state.loops.get(loop)
        if entry is not None:
            client = entry.clients.get(base_url)
            if client is not None and not client.is_closed:
                return client
        return self._new_async_client(loop, base_url)

    def _new_async_client(
        self, loop: asyncio.AbstractEventLoop, base_url: str
    ) -> httpx.AsyncClient:
        state = self._state
        dead: list[_LoopClients] = []
        with state.lock:
            entry = state.loops.get(loop)
            if entry is None:
                # A new loop: the good moment to find loops that were closed without a
                # shutdown of their async generators, and free what they still hold.
                dead = state.take_closed_loops()
                entry = state.loops[loop] = _LoopClients(loop)
                # After the loop's shutdown_asyncgens, its hook would warn of a late
                # generator; the next use from another loop finds this one closed instead.
                if sys.get_asyncgen_hooks().firstiter is not None and not getattr(
                    loop, "_asyncgens_shutdown_called", False
                ):
                    entry.closer = _closes_with_loop(state, entry)
                    _start(entry.closer)
            client = entry.clients.get(base_url)
            if client is None or client.is_closed:
                client = _AsyncClient(base_url=base_url, limits=_LIMITS, verify=_ssl_context())
                entry.clients[base_url] = client
        for gone in dead:
            _close_without_loop(gone)
        return client

    def loop_count(self) -> int:
        """How many event loops the pool holds clients for now (for tests and ``stats``)."""
        with self._state.lock:
            return len(self._state.loops)

    def close(self) -> None:
        """Close every client: the sync ones, and the async ones of every loop.

        A loop's clients are closed on it where it can still run: a loop running in another
        thread is asked to and waited for (at most 5 s); a stopped one is run until they are
        closed; on a loop running this very call (a coroutine calling ``close()``) they close
        at its next turn, so from async code prefer `aclose`. A closed loop's sockets are
        closed without it. Safe to call more than once, from any thread.
        """
        self._state.close()

    async def aclose(self) -> None:
        """`close`, awaiting the running loop's clients' close here."""
        state = self._state
        loop = asyncio.get_running_loop()
        with state.lock:
            entry = state.loops.pop(loop, None)
        if entry is not None and not entry.closing:
            if entry.closer is not None:
                await entry.closer.aclose()
            else:
                entry.closing = True
                for client in entry.take():
                    await client.aclose()
        self.close()


default_pool = ClientPool()
"""The pool of backends made without one and outside a `Forge` (CLI admin calls)."""
