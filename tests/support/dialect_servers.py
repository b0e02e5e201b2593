"""Fault servers that describe themselves as one kind of OpenAI-compatible server does, and refuse
requests as that server does.

`SelfDescribingServer` is a `FaultServer` whose GETs of the server root answer what the server
documents about itself (`SELF_DESCRIPTIONS`, the shapes docs/providers.md relies on) and whose
chat calls are first shown to ``refuses`` (a refusal, or None to take the script's fault).
`refuse_json_schema_like_llama_cpp_python` and `refuse_json_object_like_lm_studio` answer with
the exact error bodies those servers send.

```python
with SelfDescribingServer(SELF_DESCRIPTIONS["llama-cpp"]) as server:
    config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
```
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from fault_server import Fault, FaultServer, Seen

__all__ = [
    "LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR",
    "SELF_DESCRIPTIONS",
    "SelfDescribingServer",
    "refuse",
    "refuse_json_object_like_lm_studio",
    "refuse_json_schema_like_llama_cpp_python",
    "response_type",
]

#: What each server answers about itself at its root, as its documentation shows it (abridged
#: where the documented answer is long; every field forge reads is kept).
SELF_DESCRIPTIONS: dict[str, dict[str, Any]] = {
    # llama.cpp tools/server/README.md: GET /props, GET /health.
    "llama-server": {
        "/props": {
            "default_generation_settings": {
                "id": 0,
                "id_task": -1,
                "n_ctx": 1024,
                "speculative": False,
                "is_processing": False,
                "params": {"n_predict": -1, "temperature": 0.8, "max_tokens": -1},
                "prompt": "",
            },
            "total_slots": 1,
            "model_path": "../models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
            "chat_template": "...",
            "chat_template_caps": {},
            "modalities": {"vision": False},
            "build_info": "b(build number)-(build commit hash)",
            "is_sleeping": False,
        },
        "/health": {"status": "ok"},
    },
    # llama-cpp-python's server: a FastAPI app titled "🦙 llama.cpp Python API"
    # (llama_cpp/server/app.py), whose schema FastAPI serves at /openapi.json.
    "llama-cpp": {
        "/openapi.json": {
            "openapi": "3.1.0",
            "info": {"title": "🦙 llama.cpp Python API", "version": "0.3.36"},
            "paths": {"/v1/chat/completions": {}, "/v1/models": {}, "/v1/embeddings": {}},
        },
    },
    # vLLM: GET /version answers {"version": VLLM_VERSION}.
    "vllm": {"/version": {"version": "0.8.5"}},
    # Ollama: GET /api/version answers {"version": "..."}.
    "ollama": {"/api/version": {"version": "0.6.2"}},
    # LM Studio's REST API v0 (0.3.6+): GET /api/v0/models.
    "lmstudio": {
        "/api/v0/models": {
            "object": "list",
            "data": [
                {
                    "id": "qwen2-vl-7b-instruct",
                    "object": "model",
                    "type": "vlm",
                    "publisher": "mlx-community",
                    "arch": "qwen2_vl",
                    "compatibility_type": "mlx",
                    "quantization": "4bit",
                    "state": "not-loaded",
                    "max_context_length": 32768,
                },
                {
                    "id": "meta-llama-3.1-8b-instruct",
                    "object": "model",
                    "type": "llm",
                    "publisher": "lmstudio-community",
                    "arch": "llama",
                    "compatibility_type": "gguf",
                    "quantization": "Q4_K_M",
                    "state": "loaded",
                    "max_context_length": 131072,
                },
            ],
        },
    },
}

#: llama-cpp-python's server's answer to ``response_format: json_schema`` (HTTP 500): its route
#: handler turns the request-validation error into an internal-server-error body.
LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR: dict[str, Any] = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
        "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
        "'input': 'json_schema', 'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n"
        '  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n'
        "    POST /v1/chat/completions",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}

Refusal = Callable[[dict[str, Any]], Fault | None]


def response_type(body: Mapping[str, Any]) -> Any:
    """``response_format.type`` of a chat request body (None without one)."""
    return (body.get("response_format") or {}).get("type")


def refuse(code: int, error: Any) -> Fault:
    """An HTTP ``code`` answer whose JSON body is ``error``, exactly."""
    return Fault(action="status", code=code, body=json.dumps(error))


def refuse_json_schema_like_llama_cpp_python(body: dict[str, Any]) -> Fault | None:
    """The 500 llama-cpp-python's server answers ``json_schema`` with; None otherwise."""
    if response_type(body) == "json_schema":
        return refuse(500, LLAMA_CPP_PYTHON_JSON_SCHEMA_ERROR)
    return None


def refuse_json_object_like_lm_studio(body: dict[str, Any]) -> Fault | None:
    """The 400 LM Studio answers ``json_object`` with; None otherwise."""
    if response_type(body) == "json_object":
        return refuse(400, {"error": "'response_format.type' must be 'json_schema' or 'text'"})
    return None


class SelfDescribingServer(FaultServer):
    """A `FaultServer` that answers ``describes`` (path -> JSON body) to GETs of its root and
    lets ``refuses`` answer a chat call before the script does."""

    def __init__(
        self,
        describes: Mapping[str, Any] | None = None,
        *,
        refuses: Refusal | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.describes = dict(describes or {})
        self.refuses = refuses

    def _get(self, path: str) -> tuple[int, Any]:
        if path in self.describes:
            return 200, self.describes[path]
        return super()._get(path)

    async def _respond(
        self,
        fault: Fault,
        seen: Seen,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        refusal = self.refuses(seen.body) if self.refuses is not None else None
        if refusal is not None:
            seen.fault = fault = refusal
        return await super()._respond(fault, seen, reader, writer)
