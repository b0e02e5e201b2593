"""A fast OpenAI-compatible loopback server for the benchmarks, run in its own process.

One process listens on 127.0.0.1 on four ports, one per mode:

- ``live``: answers ``POST .../chat/completions`` at once, as JSON or as an SSE stream
  (``"stream": true``) in the shape of ``docs/providers.md (OpenAI)``; ``GET .../models``.
- ``stalled``: accepts connections and reads requests, never answers.
- ``ratelimited``: answers every request with 429, an OpenAI error body and ``Retry-After``.
- ``failing``: answers every request with 500 and an OpenAI error body (``server_error``).

The fourth failure mode, ``refused``, is just a closed port (`closed_port_url`).
HTTP/1.1 with keep-alive is parsed by hand on an asyncio ``Protocol``: the server must cost
as little as possible so that the clients' own cost is what the benchmarks see, and it runs in
another process so it never competes with them for the GIL.

Run directly: ``python -m benchmarks.server`` prints one JSON line with the ports, then
serves until stdin closes (so it never outlives its parent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "bench-model"
CONTENT_PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
RETRY_AFTER_SECONDS = 1


def _completion(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(CONTENT_PIECES),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": len(CONTENT_PIECES),
                "total_tokens": 18,
            },
            "system_fingerprint": "fp_bench",
        },
        separators=(",", ":"),
    ).encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": None,
    }


def _stream_events(model: str, include_usage: bool) -> list[bytes]:
    events = [_chunk(model, {"role": "assistant", "content": ""}, None)]
    events += [_chunk(model, {"content": piece}, None) for piece in CONTENT_PIECES]
    events.append(_chunk(model, {}, "stop"))
    if include_usage:
        last = _chunk(model, {}, None)
        last["choices"] = []
        last["usage"] = {
            "prompt_tokens": 9,
            "completion_tokens": len(CONTENT_PIECES),
            "total_tokens": 18,
        }
        events.append(last)
    encoded = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    return [*encoded, b"data: [DONE]\n\n"]


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_MODELS = json.dumps(
    {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}],
    }
).encode()
_RATE_LIMITED = json.dumps(
    {
        "error": {
            "message": "Rate limit reached for requests (benchmark).",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
).encode()
_SERVER_ERROR = json.dumps(
    {
        "error": {
            "message": "The server had an error while processing your request (benchmark).",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
).encode()
_NOT_FOUND = (
    b'{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}'
)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are answered in order."""

    def __init__(self, mode: str, chunk_delay: float) -> None:
        self._mode = mode
        self._chunk_delay = chunk_delay
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._mode == "stalled":
            return  # read and drop: the client waits until its own timeout
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self._buffer) < end:
                return
            body = self._buffer[head_end + 4 : end]
            self._buffer = self._buffer[end:]
            method, path, _ = head.split(" ", 2)
            self._answer(method, path, body)

    def _send(self, status: str, body: bytes, extra: str = "") -> None:
        if self._transport is None:
            return
        self._transport.write(
            (
                f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n{extra}\r\n"
            ).encode()
            + body
        )

    def _answer(self, method: str, path: str, body: bytes) -> None:
        if self._mode == "ratelimited":
            self._send(
                "429 Too Many Requests", _RATE_LIMITED, f"retry-after: {RETRY_AFTER_SECONDS}\r\n"
            )
            return
        if self._mode == "failing":
            self._send("500 Internal Server Error", _SERVER_ERROR)
            return
        if method == "GET" and path.rstrip("/").endswith("/models"):
            self._send("200 OK", _MODELS)
            return
        if method != "POST" or not path.endswith("/chat/completions"):
            self._send("404 Not Found", _NOT_FOUND)
            return
        request = json.loads(body or b"{}")
        model = str(request.get("model") or MODEL)
        if not request.get("stream"):
            self._send("200 OK", _completion(model))
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        events = _stream_events(model, include_usage)
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        if self._chunk_delay <= 0:
            self._write(head + b"".join(_http_chunk(e) for e in events) + b"0\r\n\r\n")
        else:
            self._write(head)
            asyncio.get_running_loop().create_task(self._trickle(events))

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    async def _trickle(self, events: list[bytes]) -> None:
        # The first event at once, then one per delay: TTFT and total differ, like a model.
        for index, event in enumerate(events):
            if index > 1:
                await asyncio.sleep(self._chunk_delay)
            self._write(_http_chunk(event))
        self._write(b"0\r\n\r\n")


async def _serve(chunk_delay: float) -> None:
    loop = asyncio.get_running_loop()
    ports: dict[str, int] = {}
    servers = []
    for mode in ("live", "stalled", "ratelimited", "failing"):
        server = await loop.create_server(
            lambda mode=mode: _Connection(mode, chunk_delay),  # type: ignore[misc]
            "127.0.0.1",
            0,
            backlog=2048,
        )
        servers.append(server)
        ports[mode] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


def main() -> None:
    """Entry point of ``python -m benchmarks.server``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chunk-delay-ms", type=float, default=1.0, help="Delay between streamed chunks."
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.chunk_delay_ms / 1000))


@dataclass(frozen=True)
class Loopback:
    """The running server's base URLs (``.../v1``), one per mode, and a refused one."""

    live: str
    stalled: str
    ratelimited: str
    refused: str
    live_port: int
    #: Answers 500 with an OpenAI error body.
    failing: str = ""


def closed_port_url() -> str:
    """A ``.../v1`` base URL on 127.0.0.1 whose port refuses connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@contextlib.contextmanager
def loopback_server(chunk_delay_ms: float = 1.0) -> Iterator[Loopback]:
    """Start the server in a child process, yield its URLs, stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", "--chunk-delay-ms", str(chunk_delay_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("benchmark server exited before it listened")
        ports = json.loads(line)
        yield Loopback(
            live=f"http://127.0.0.1:{ports['live']}/v1",
            stalled=f"http://127.0.0.1:{ports['stalled']}/v1",
            ratelimited=f"http://127.0.0.1:{ports['ratelimited']}/v1",
            refused=closed_port_url(),
            live_port=ports["live"],
            failing=f"http://127.0.0.1:{ports['failing']}/v1",
        )
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    main()
