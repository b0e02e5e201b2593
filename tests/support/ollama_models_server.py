"""An Ollama server on 127.0.0.1 whose models say what they can do: ``/api/show`` and chat.

It answers the documented shapes (docs/providers.md, Ollama): ``GET /api/version``, ``/api/tags``,
``/api/ps`` (nothing loaded) and ``/v1/models``; ``POST /api/show`` with each model's
``capabilities`` (``completion``, ``vision``, ``tools``, ``thinking``) and
``model_info.<arch>.context_length``, 404 for a model it does not have; ``POST
/v1/chat/completions`` (an answer naming the model, or SSE chunks when ``stream``), which
refuses a model that cannot think asked to (``reasoning_effort``) with Ollama's 400 ``"<model>"
does not support thinking``. ``show`` makes ``/api/show`` fail for every model: ``not_found``
(404), ``malformed`` (a body that is not JSON), ``wrong_shape`` (JSON that is not Ollama's
shape) or ``hang`` (no answer until the server stops). Real sockets, a daemon thread.

```python
with OllamaModelsServer({"llava": ["completion", "vision"]}) as server:
    ...
    assert server.posts("/api/show") == [{"model": "llava"}]
```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = ["OllamaModelsServer", "ShowFault"]

ShowFault = Literal["ok", "not_found", "malformed", "wrong_shape", "hang"]


class OllamaModelsServer:
    """Serve ``models`` (name -> what ``/api/show`` lists in ``capabilities``; None: an older
    Ollama, whose answer has no ``capabilities`` field).

    ``requests`` records ``(method, path, body)`` of every request, in order.
    """

    def __init__(
        self,
        models: Mapping[str, Sequence[str] | None],
        *,
        show: ShowFault = "ok",
        context_length: int = 8192,
    ) -> None:
        self.models = {name: caps for name, caps in models.items()}
        self.show = show
        self.context_length = context_length
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def posts(self, path: str) -> list[dict[str, Any]]:
        """The bodies of the POSTs to ``path``, in order."""
        return [body for method, at, body in self.requests if method == "POST" and at == path]

    def chat_models(self) -> list[str]:
        """The model of each chat request, in order."""
        return [str(body.get("model")) for body in self.posts("/v1/chat/completions")]

    def __enter__(self) -> OllamaModelsServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _shown(self, model: str) -> tuple[int, Any]:
        if self.show == "not_found" or model not in self.models:
            return 404, {"error": f"model '{model}' not found"}
        if self.show == "wrong_shape":
            return 200, {"model_info": ["llama"], "capabilities": "vision"}
        details = {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "7B",
            "quantization_level": "Q4_K_M",
        }
        info = {"general.architecture": "llama", "llama.context_length": self.context_length}
        answer = {
            "modelfile": "",
            "parameters": "",
            "template": "",
            "details": details,
            "model_info": info,
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
        }
        capabilities = self.models[model]
        return 200, answer if capabilities is None else {**answer, "capabilities": capabilities}

    def _chat(self, body: dict[str, Any]) -> tuple[int, Any]:
        model = str(body.get("model"))
        if model not in self.models:
            message = f'model "{model}" not found, try pulling it first'
            return 404, {"error": {"message": message, "type": "api_error"}}
        if body.get("reasoning_effort") and "thinking" not in (self.models[model] or ()):
            message = f'"{model}" does not support thinking'
            return 400, {"error": {"message": message, "type": "invalid_request_error"}}
        return 200, {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1751919739,
            "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"{model} answered"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, data: Any) -> None:
                body = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, answer: dict[str, Any]) -> None:
                choice = answer["choices"][0]
                text = choice["message"]["content"]
                base = {key: answer[key] for key in ("id", "created", "model")}
                chunks = [
                    {"delta": {"role": "assistant", "content": text}, "finish_reason": None},
                    {"delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"},
                ]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                events = [
                    {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, **c}]}
                    for c in chunks
                ]
                for event in [*map(json.dumps, events), "[DONE]"]:
                    data = f"data: {event}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, {}))
                if self.path == "/api/version":
                    self._send(200, {"version": "0.12.3"})
                elif self.path == "/api/ps":
                    self._send(200, {"models": []})
                elif self.path == "/api/tags":
                    names = [{"name": name, "model": name} for name in server.models]
                    self._send(200, {"models": names})
                elif self.path == "/v1/models":
                    data = [{"id": name, "object": "model"} for name in server.models]
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(("POST", self.path, body))
                if self.path == "/api/show":
                    if server.show == "hang":
                        server._stopping.wait()
                        return
                    if server.show == "malformed":
                        self._send(200, b"<html>not json</html>")
                        return
                    self._send(*server._shown(str(body.get("model"))))
                elif self.path == "/v1/chat/completions":
                    status, answer = server._chat(body)
                    if status == 200 and body.get("stream"):
                        self._stream(answer)
                    else:
                        self._send(status, answer)
                else:
                    self._send(404, {"error": "404 page not found"})

        return Handler
