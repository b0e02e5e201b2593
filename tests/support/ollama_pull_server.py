"""A small Ollama-native HTTP server on 127.0.0.1 for CLI tests: pulls, discovery, preload.

It answers the documented shapes (docs/providers.md, Ollama): ``GET /api/version``,
``GET /api/tags`` (the models pulled so far), ``GET /api/ps`` (those preloaded), ``POST
/api/show``, ``POST /api/generate`` with no prompt (a preload: ``done_reason: "load"``) and
``POST /api/pull``, which streams NDJSON progress objects for each layer of a model in
``registry`` (``pulling manifest``, per-layer ``digest``/``total``/``completed`` lines,
``verifying sha256 digest``, ``writing manifest``, ``success``) and then lists the model; an
unknown model gets the documented in-stream error after the first line (HTTP 200). Real
sockets, a daemon thread, and the server stops by itself after ``lifetime`` seconds.

```python
with OllamaPullServer({"tiny:1b": [("sha256:aa11", 3000)]}) as server:
    forge_cli("pull", "tiny:1b", "--config", str(config_for_ollama(server.base_url)))
```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["OllamaPullServer"]

#: Bytes per progress line: a layer of N bytes streams ceil(N / CHUNK) + 1 lines.
CHUNK = 1000


class OllamaPullServer:
    """Serve a registry of pullable models (name -> layers of ``(digest, size)``).

    ``pulled`` names models already present; ``requests`` records ``(method, path, body)``.
    """

    def __init__(
        self,
        registry: Mapping[str, Sequence[tuple[str, int]]],
        *,
        pulled: Sequence[str] = (),
        context_length: int = 8192,
        lifetime: float = 60.0,
    ) -> None:
        self.registry = {name: list(layers) for name, layers in registry.items()}
        self.pulled: list[str] = list(pulled)
        self.loaded: list[str] = []
        self.context_length = context_length
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._lifetime = lifetime
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime, self._server.shutdown)
        self._timer.daemon = True

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OllamaPullServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def progress_lines(self, model: str) -> list[dict[str, Any]]:
        """The NDJSON objects ``/api/pull`` streams for ``model``."""
        layers = self.registry.get(model)
        if layers is None:
            return [
                {"status": "pulling manifest"},
                {"error": "pull model manifest: file does not exist"},
            ]
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        for digest, total in layers:
            done = 0
            while True:
                status = f"pulling {digest.removeprefix('sha256:')[:12]}"
                lines.append(
                    {"status": status, "digest": digest, "total": total, "completed": done}
                )
                if done >= total:
                    break
                done = min(done + CHUNK, total)
        lines += [{"status": s} for s in ("verifying sha256 digest", "writing manifest", "success")]
        return lines

    def _tag(self, name: str) -> dict[str, Any]:
        size = sum(size for _, size in self.registry.get(name, [("", 0)]))
        details = {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "1B",
            "quantization_level": "Q4_K_M",
        }
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "size": size,
            "digest": "a80c4f17acd5",
            "details": details,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked NDJSON needs 1.1

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                data = json.loads(raw or b"{}")
                return data if isinstance(data, dict) else {}

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, {}))
                if self.path == "/api/version":
                    self._send(200, {"version": "0.5.1"})
                elif self.path == "/api/tags":
                    self._send(200, {"models": [server._tag(name) for name in server.pulled]})
                elif self.path == "/api/ps":
                    running = [
                        {**server._tag(name), "size_vram": 0, "context_length": 4096}
                        for name in server.loaded
                    ]
                    self._send(200, {"models": running})
                else:
                    self._send(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                body = self._body()
                server.requests.append(("POST", self.path, body))
                model = str(body.get("model", ""))
                if self.path == "/api/pull":
                    self._pull(model)
                elif self.path == "/api/show":
                    if model not in server.pulled:
                        self._send(404, {"error": f"model '{model}' not found"})
                        return
                    info = {
                        "general.architecture": "llama",
                        "llama.context_length": server.context_length,
                    }
                    self._send(
                        200,
                        {
                            "modelfile": "",
                            "parameters": "",
                            "template": "",
                            "details": server._tag(model)["details"],
                            "model_info": info,
                            "capabilities": ["completion", "tools"],
                        },
                    )
                elif self.path == "/api/generate":
                    if model not in server.pulled:
                        self._send(404, {"error": f"model '{model}' not found"})
                        return
                    server.loaded.append(model)
                    created = "2025-07-07T20:22:19.184789Z"
                    answer = {"model": model, "created_at": created, "response": ""}
                    self._send(200, {**answer, "done": True, "done_reason": "load"})
                else:
                    self._send(404, {"error": "404 page not found"})

            def _pull(self, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line in server.progress_lines(model):
                    data = (json.dumps(line) + "\n").encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                if model in server.registry and model not in server.pulled:
                    server.pulled.append(model)

        return Handler
