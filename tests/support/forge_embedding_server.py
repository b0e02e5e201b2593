"""llama-cpp-python's OpenAI-compatible server in embedding mode (``--embedding true``).

It serves ``POST /v1/embeddings`` for the embedded Gemma 3 270M GGUF on a free port of
127.0.0.1, for tests of forge's OpenAI embeddings path against a real server.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from forge_test_support import (
    EMBEDDED_MODEL,
    LocalServer,
    _wait_until_serving,
    free_port,
)


@contextlib.contextmanager
def run_embedding_server(model_path: Path) -> Iterator[LocalServer]:
    """Start the server with embeddings on, wait until it serves, stop it after."""
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
        "--embedding",
        "true",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "512",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
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
