"""A fault-injecting HTTP server on 127.0.0.1 that speaks OpenAI chat completions (and
``/embeddings``: an answer there is one vector per input).

Each request takes the next `Fault` of the server's script (the ``default`` once the script is
used up), so a test says exactly what the endpoint does on its 1st, 2nd, ... call and then
checks `FaultServer.requests` for the exact attempts made. Real sockets, its own asyncio loop
in a daemon thread; every stall ends when the client disconnects or the server stops, and the
server stops by itself after ``lifetime`` seconds, so nothing outlives a test.

```python
with FaultServer([status(503), ok("hi")]) as server:
    config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
```
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Fault",
    "FaultServer",
    "close_mid_stream",
    "forge_on",
    "hang",
    "held",
    "malformed_json",
    "ok",
    "ollama_hosts_on",
    "rate_limited",
    "reset",
    "slow",
    "stall_before_first_token",
    "stall_mid_stream",
    "status",
    "truncated_sse",
]

MODEL = "fault-model"


@dataclass(frozen=True)
class Fault:
    """What the server does with one request.

    ``action``: ``answer`` (JSON, or SSE when the request streams), ``status``, ``hang``
    (read the request, never answer), ``reset`` (close without answering), ``malformed``.
    For streams: ``pieces`` are sent as content deltas; ``stall_before`` holds the stream
    after its role chunk, ``then`` says how it ends: ``done`` (finish reason, usage,
    ``[DONE]``), ``stall`` (hold the connection open), ``close`` (drop the connection
    mid-body) or ``truncate`` (half an event, then a clean end of body).
    """

    action: str = "answer"
    text: str = "hello from the fault server"
    pieces: tuple[str, ...] = ()
    code: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    delay: float = 0.0
    stall_before: bool = False
    then: str = "done"
    #: Answer only once this is set (or the server stops), whatever the action.
    release: threading.Event | None = None


def ok(text: str = "hello from the fault server", *pieces: str) -> Fault:
    """A normal answer (``pieces`` are the stream's deltas; default: ``text`` in one delta)."""
    return Fault(text=text, pieces=pieces or (text,))


def slow(delay: float, text: str = "slow answer") -> Fault:
    """A normal answer, sent after ``delay`` seconds."""
    return Fault(text=text, pieces=(text,), delay=delay)


def status(code: int, message: str | None = None, **headers: str) -> Fault:
    """An HTTP error with an OpenAI-shaped error body (``Retry_After="2"`` -> a header)."""
    body = json.dumps({"error": {"message": message or f"injected {code}", "type": "server_error"}})
    pairs = tuple((name.replace("_", "-"), value) for name, value in headers.items())
    return Fault(action="status", code=code, body=body, headers=pairs)


def rate_limited(retry_after: float | None = None, *, http_date: bool = False) -> Fault:
    """429 with ``Retry-After`` in seconds, or as an HTTP date that far ahead."""
    if retry_after is None:
        return status(429, "rate limit exceeded")
    value = (
        email.utils.formatdate(time.time() + retry_after, usegmt=True)
        if http_date
        else f"{retry_after:g}"
    )
    return status(429, "rate limit exceeded", Retry_After=value)


def held(release: threading.Event, text: str = "held answer") -> Fault:
    """A normal answer, sent once ``release`` is set (the test decides when)."""
    return Fault(text=text, pieces=(text,), release=release)


def hang() -> Fault:
    """Accept and read the request, then never answer."""
    return Fault(action="hang")


def reset() -> Fault:
    """Accept and read the request, then close the connection without a word."""
    return Fault(action="reset")


def malformed_json() -> Fault:
    """200 whose body is not JSON (a stream gets an event whose data is not JSON)."""
    return Fault(action="malformed")


def stall_before_first_token() -> Fault:
    """Headers and the role chunk, then nothing (the stream never produces a token)."""
    return Fault(stall_before=True, pieces=("never",))


def stall_mid_stream(*pieces: str) -> Fault:
    """``pieces`` as deltas, then the stream holds still."""
    return Fault(pieces=pieces, then="stall")


def close_mid_stream(*pieces: str) -> Fault:
    """``pieces`` as deltas, then the connection drops mid-body."""
    return Fault(pieces=pieces, then="close")


def truncated_sse(*pieces: str) -> Fault:
    """``pieces`` as deltas, then half an event and a clean end of body: no finish, no [DONE]."""
    return Fault(pieces=pieces, then="truncate")


@dataclass
class Seen:
    """One request the server received."""

    path: str
    body: dict[str, Any]
    fault: Fault
    #: Set when the client hung up on a request the server was still holding.
    client_closed: threading.Event = field(default_factory=threading.Event)


class FaultServer:
    """The server; a context manager. ``script`` may also be a callable ``(n) -> Fault``.

    ``GET .../models`` always answers the ``models`` listing with ``models_status``, outside
    the script (health probes and discovery use it); ``GET /api/tags`` answers the same
    ``models`` in Ollama's documented shape, for Ollama discovery (docs/providers.md, Ollama).
    With ``loaded`` (a list, which a test may change), ``GET /api/ps`` answers those models as
    Ollama's loaded ones; without it, 404. Any other GET answers 404, also outside the script
    (forge's dialect probes: a server that does not describe itself); a subclass answers more
    paths by overriding ``_get``.
    """

    def __init__(
        self,
        script: Sequence[Fault] | Callable[[int], Fault] = (),
        *,
        default: Fault | None = None,
        lifetime: float = 30.0,
        models: Sequence[str] = ("m",),
        models_status: int = 200,
        loaded: Sequence[str] | None = None,
    ) -> None:
        self._script = script if callable(script) else list(script)
        self._default = default or ok()
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self.requests: list[Seen] = []
        #: The path of every GET: listings and probes (not part of the script, not in requests).
        self.probes: list[str] = []
        self.models = list(models)
        self.models_status = models_status
        self.loaded = list(loaded) if loaded is not None else None
        self._arrived = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The server root (for Ollama-style base URLs; the chat path is ``/v1/...``)."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultServer:
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fault server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and drop every held connection."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests (not GETs) have arrived; False if ``timeout`` passed."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def _next(self) -> Fault:
        with self._lock:
            n = len(self.requests)
            if callable(self._script):
                return self._script(n)
            return self._script[n] if n < len(self._script) else self._default

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._lifetime)
            self._stop.set()
            server.close()
            # Idle keep-alive connections wait in a read: closing them ends their handlers.
            for writer in list(self._writers):
                writer.close()
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, body = request
                if method == "GET":
                    # Discovery, health and self-description probes: answered, counted apart
                    # from chat calls, never taking a fault from the script.
                    with self._lock:
                        self.probes.append(path)
                    code, answer = self._get(path)
                    await _send(writer, code, json.dumps(answer), "application/json")
                    continue
                fault = self._next()
                seen = Seen(path, body, fault)
                with self._lock:
                    self.requests.append(seen)
                    self._arrived.notify_all()
                keep_open = await self._respond(fault, seen, reader, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _get(self, path: str) -> tuple[int, Any]:
        """The status and JSON body a GET of ``path`` answers: the ``models`` listing for
        ``.../models``, Ollama's tags for ``/api/tags``, 404 for any other path (a server that
        does not describe itself)."""
        if path.rstrip("/").endswith("/models"):
            listing = [{"id": m, "object": "model"} for m in self.models]
            return self.models_status, {"object": "list", "data": listing}
        if path == "/api/tags":
            return 200, {"models": [_ollama_tag(m) for m in self.models]}
        if path == "/api/ps" and self.loaded is not None:
            return 200, {"models": [_ollama_running(m) for m in self.loaded]}
        return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}

    async def _hold(self, seen: Seen, reader: asyncio.StreamReader) -> None:
        """Wait until the client hangs up or the server stops."""
        assert self._stop is not None
        stop = asyncio.ensure_future(self._stop.wait())
        eof = asyncio.ensure_future(reader.read(1))
        done, pending = await asyncio.wait({stop, eof}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if eof in done:
            seen.client_closed.set()

    async def _respond(
        self,
        fault: Fault,
        seen: Seen,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.release is not None:
            assert self._stop is not None
            while not (fault.release.is_set() or self._stop.is_set()):
                await asyncio.sleep(0.005)
        if fault.action == "hang":
            await self._hold(seen, reader)
            return False
        if fault.action == "reset":
            return False
        if fault.action == "status":
            await _send(writer, fault.code, fault.body or "", "application/json", fault.headers)
            return True
        streaming = bool(seen.body.get("stream"))
        if fault.action == "malformed" and not streaming:
            await _send(writer, 200, '{"choices": [ {"message": ', "application/json")
            return True
        if seen.path.endswith("/embeddings"):
            await _send(writer, 200, json.dumps(_embeddings(seen.body)), "application/json")
            return True
        if not streaming:
            await _send(writer, 200, json.dumps(_completion(fault.text)), "application/json")
            return True
        return await self._stream(fault, seen, reader, writer)

    async def _stream(
        self,
        fault: Fault,
        seen: Seen,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n"
        )
        writer.write(head.encode())
        await _event(writer, _chunk({"role": "assistant", "content": ""}))
        if fault.stall_before:
            await self._hold(seen, reader)
            return False
        if fault.action == "malformed":
            await _raw(writer, b"data: {not json\n\n")
            await _raw(writer, b"")
            return True
        for piece in fault.pieces:
            await _event(writer, _chunk({"content": piece}))
        if fault.then == "stall":
            await self._hold(seen, reader)
            return False
        if fault.then == "close":
            return False
        if fault.then == "truncate":
            await _raw(writer, b'data: {"choices": [{"delta": {"content": "cut of')
            await _raw(writer, b"")
            return True
        await _event(writer, _chunk({}, finish_reason="stop"))
        usage = {"prompt_tokens": 3, "completion_tokens": len(fault.pieces), "total_tokens": 0}
        await _event(writer, {**_envelope(), "choices": [], "usage": usage})
        await _raw(writer, b"data: [DONE]\n\n")
        await _raw(writer, b"")
        return True


def _ollama_tag(name: str) -> dict[str, Any]:
    """One ``/api/tags`` entry, as Ollama documents it."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-05-04T17:37:44.706015396-07:00",
        "size": 4109865159,
        "digest": "f7f9f9a1e3c2",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "7B",
            "quantization_level": "Q4_0",
        },
    }


def _ollama_running(name: str) -> dict[str, Any]:
    """One ``/api/ps`` entry (a model loaded in memory now), as Ollama documents it."""
    tag = _ollama_tag(name)
    del tag["modified_at"]
    return {**tag, "expires_at": "2025-05-04T18:07:44.706015396-07:00", "size_vram": 4109865159}


def _envelope() -> dict[str, Any]:
    return {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1, "model": MODEL}


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        **_envelope(),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        "usage": None,
    }


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``/embeddings`` answer: one unit vector per input, ``[0.6, 0.8]`` for each."""
    texts = body.get("input") or []
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": [0.6, 0.8]}
            for index in range(len(texts))
        ],
        "model": body.get("model", MODEL),
        "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
    }


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, Any]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    raw = await reader.readexactly(length) if length else b""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    return method, path, body if isinstance(body, dict) else {}


async def _send(
    writer: asyncio.StreamWriter,
    code: int,
    body: str,
    content_type: str,
    headers: Iterator[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
) -> None:
    data = body.encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    writer.write(
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\n{extra}\r\n".encode()
        + data
    )
    await writer.drain()


async def _raw(writer: asyncio.StreamWriter, data: bytes) -> None:
    """One HTTP chunk (empty: the end of the chunked body)."""
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


async def _event(writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
    await _raw(writer, f"data: {json.dumps(data)}\n\n".encode())


_REASONS = {
    200: "OK",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


def forge_on(*servers: FaultServer | str, clock: Any = None, **routing: Any) -> Any:
    """A `Forge` whose candidates, in order, are ``servers`` (a str is a base URL as is).

    The first is reached as ``openai``, the second as ``openrouter``, the third as ``ollama``
    (its ``/v1`` surface), each with model ``m``; ``routing`` keys go to the ``routing``
    section. ``clock`` is injected so backoff and cooldowns cost no real time.
    """
    from forge_core import Forge
    from forge_test_support import config_for

    specs: list[dict[str, Any]] = []
    for name, server in zip(("openai", "openrouter", "ollama"), servers, strict=False):
        url = server if isinstance(server, str) else server.base_url
        if name == "ollama":
            root = url if isinstance(server, str) else server.root_url
            specs.append({"name": name, "base_url": root, "preferred_models": ["m"]})
        else:
            specs.append({"name": name, "base_url": url, "default_model": "m"})
    return Forge(config_for(*specs, routing=routing), clock=clock)


def ollama_hosts_on(*hosts: FaultServer, **routing: Any) -> dict[str, Any]:
    """A config dict whose one order entry is ``ollama`` with ``hosts`` as its ``hosts:``
    (named ``host-a``, ``host-b``, ...), each preferring model ``m``; ``routing`` keys go to
    the ``routing`` section. Validate it with ``ForgeConfig.model_validate``."""
    return {
        "model_preferences": {"local_first": False},
        "providers": {
            "local": {
                "ollama": {
                    "hosts": [
                        {"name": f"host-{chr(ord('a') + i)}", "base_url": host.root_url}
                        for i, host in enumerate(hosts)
                    ],
                    "preferred_models": ["m"],
                }
            },
            "fallback": {"order": ["ollama"]},
        },
        "routing": routing,
    }
