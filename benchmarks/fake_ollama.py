"""Two fake Ollama hosts for the deployments benchmark, in their own process.

One process listens on 127.0.0.1 on two ports: ``warm`` has the benchmark model loaded
(``/api/ps`` lists it) and ``cold`` has it pulled but not loaded (``/api/ps`` lists nothing).
Both answer Ollama's documented ``GET /api/version``, ``/api/tags`` and ``/api/ps`` under any
path prefix (``http://127.0.0.1:PORT/h07/api/ps``), so one port can stand for many hosts with
distinct base URLs, and Ollama's OpenAI-compatible ``POST .../v1/chat/completions`` (and
``GET .../v1/models``) as the benchmark server's ``live`` mode does (`benchmarks.server`).

Run directly: ``python -m benchmarks.fake_ollama`` prints one JSON line with the ports, then
serves until stdin closes (so it never outlives its parent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.server import MODEL, _Connection

#: The benchmark model as Ollama lists it (a bare name means its ``latest`` tag).
TAG = f"{MODEL}:latest"
_DETAILS = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "135M",
    "quantization_level": "Q4_0",
}
_MODEL = {"name": TAG, "model": TAG, "size": 100_000_000, "digest": "bench", "details": _DETAILS}
_VERSION = json.dumps({"version": "0.9.0"}).encode()
_TAGS = json.dumps(
    {"models": [{**_MODEL, "modified_at": "2025-05-04T17:37:44.706015396-07:00"}]}
).encode()


def _ps(loaded: bool) -> bytes:
    running: list[dict[str, Any]] = []
    if loaded:
        running.append(
            {
                **_MODEL,
                "expires_at": "2099-01-01T00:00:00.000000000Z",
                "size_vram": 100_000_000,
                "context_length": 2048,
            }
        )
    return json.dumps({"models": running}).encode()


class _OllamaConnection(_Connection):
    """The live server's connection, answering Ollama's ``/api`` listings as well."""

    def __init__(self, loaded: bool) -> None:
        super().__init__("live", 0.0)
        self._listings = {"/api/version": _VERSION, "/api/tags": _TAGS, "/api/ps": _ps(loaded)}

    def _answer(self, method: str, path: str, body: bytes) -> None:
        at = path.rfind("/api/")
        if method == "GET" and at >= 0:
            listing = self._listings.get(path[at:].split("?", 1)[0])
            if listing is not None:
                self._send("200 OK", listing)
                return
        super()._answer(method, path, body)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    ports: dict[str, int] = {}
    servers = []
    for name, loaded in (("warm", True), ("cold", False)):
        server = await loop.create_server(
            lambda loaded=loaded: _OllamaConnection(loaded),  # type: ignore[misc]
            "127.0.0.1",
            0,
            backlog=2048,
        )
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


@dataclass(frozen=True)
class FakeOllama:
    """The two hosts' root URLs (``http://127.0.0.1:PORT``, Ollama's ``base_url`` form)."""

    warm: str
    cold: str


@contextlib.contextmanager
def fake_ollama_hosts() -> Iterator[FakeOllama]:
    """Start the fake hosts in a child process, yield their URLs, stop them on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fake_ollama"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("fake Ollama server exited before it listened")
        ports = json.loads(line)
        yield FakeOllama(
            warm=f"http://127.0.0.1:{ports['warm']}", cold=f"http://127.0.0.1:{ports['cold']}"
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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
