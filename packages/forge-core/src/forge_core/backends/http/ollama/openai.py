"""`OllamaOpenAIClient`: Ollama through its OpenAI-compatible ``/v1`` surface (``api: openai``,
the default, which other servers with that surface also answer); listing, health and
capabilities through the native admin API (`AdminBackedClient`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT
from forge_core.backends.http.ollama.admin import OllamaAdmin
from forge_core.backends.http.ollama.admin_backed import (
    DEFAULT_OLLAMA_EMBEDDING_MODEL,
    AdminBackedClient,
)
from forge_core.backends.http.ollama.wire import check_parts
from forge_core.backends.http.openai.client import OpenAICompatibleClient
from forge_core.backends.http.pool import ClientPool
from forge_core.errors import OllamaUnavailable
from forge_core.types import ChatRequest, Provider

__all__ = ["OllamaOpenAIClient"]


class OllamaOpenAIClient(AdminBackedClient, OpenAICompatibleClient):
    """Chat through Ollama's OpenAI-compatible ``/v1/chat/completions`` and embeddings through
    ``/v1/embeddings``; listing and health through the native API (`OllamaAdmin`), falling back
    to ``/v1/models`` for health on servers without it."""

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        default_model: str,
        default_embedding_model: str = DEFAULT_OLLAMA_EMBEDDING_MODEL,
        dialect: str = "openai",
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        keep_alive: str | int | None = None,
        preferred_models: Sequence[str] = (),
        auto_discovery: bool = True,
        pool: ClientPool | None = None,
    ) -> None:
        self.preferred_models = tuple(preferred_models)
        self.auto_discovery = auto_discovery
        super().__init__(
            Provider.OLLAMA,
            base_url,
            default_model=default_model,
            default_embedding_model=default_embedding_model,
            chat_path="/v1/chat/completions",
            embeddings_path="/v1/embeddings",
            unavailable_error=OllamaUnavailable,
            capabilities=profiles.OLLAMA,
            dialect=dialect,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )
        self.admin = OllamaAdmin(
            base_url,
            timeout_seconds=timeout_seconds,
            health_check_timeout=health_check_timeout,
            keep_alive=keep_alive,
            v1_health=True,
            pool=pool,
        )

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        # Ollama's /v1 takes images only as base64 data URLs; say so before sending.
        check_parts(request.messages)
        return super()._body(request, model, stream=stream)
