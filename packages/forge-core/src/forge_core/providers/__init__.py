"""Provider backends, one per provider, all implementing `ChatBackend`; those whose endpoint
embeds also implement `EmbeddingBackend`."""

from __future__ import annotations

from collections.abc import Mapping

from forge_core._config import ForgeConfig
from forge_core._http import ClientPool
from forge_core._types import Capabilities, Provider
from forge_core.providers._anthropic import AnthropicClient
from forge_core.providers._base import (
    AttemptTimeouts,
    ChatBackend,
    EmbeddingBackend,
    ModelCatalog,
    ModelInfo,
)
from forge_core.providers._huggingface import HuggingFaceBackend, LlamaCppBackend
from forge_core.providers._ollama import (
    OllamaAdmin,
    OllamaClient,
    OllamaModel,
    OllamaModelDetails,
    OllamaModelInfo,
    OllamaOpenAIClient,
    OllamaRunningModel,
    PullProgress,
    ollama_admin,
)
from forge_core.providers._openai_compat import OpenAICompatibleClient

__all__ = [
    "AnthropicClient",
    "AttemptTimeouts",
    "ChatBackend",
    "EmbeddingBackend",
    "LlamaCppBackend",
    "ModelCatalog",
    "ModelInfo",
    "OllamaAdmin",
    "OllamaClient",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaModelInfo",
    "OllamaOpenAIClient",
    "OllamaRunningModel",
    "OpenAICompatibleClient",
    "PullProgress",
    "build_backends",
    "ollama_admin",
    "read_timeout_for",
]

#: Ollama model used when ``preferred_models`` is empty and the request names none.
OLLAMA_FALLBACK_MODEL = "llama3.2"
_OPENAI_HOST = "api.openai.com"
#: Cloud chat-completions APIs: tools, tool_choice, JSON schema and JSON mode, images.
_CLOUD_CAPABILITIES = Capabilities(
    tools=True, tool_choice=True, structured_output=True, json_mode=True, vision=True
)
#: OpenAI (and servers configured in its place) also serve ``/embeddings``.
_OPENAI_CAPABILITIES = _CLOUD_CAPABILITIES.model_copy(update={"embeddings": True})


def build_backends(
    config: ForgeConfig, *, pool: ClientPool | None = None, env: Mapping[str, str] | None = None
) -> dict[Provider, ChatBackend]:
    """One backend per provider this version of forge can call, built from ``config``."""
    local = config.providers.local
    cloud = config.providers.cloud
    ollama = local.ollama
    openai = cloud.openai
    anthropic = cloud.anthropic
    openrouter = cloud.openrouter
    openrouter_headers = {
        name: value
        for name, value in (("HTTP-Referer", openrouter.app_url), ("X-Title", openrouter.app_title))
        if value
    }
    ollama_default = (ollama.preferred_models or [OLLAMA_FALLBACK_MODEL])[0]
    ollama_client: ChatBackend
    if ollama.api == "native":
        ollama_client = OllamaClient(
            ollama.base_url,
            default_model=ollama_default,
            timeout_seconds=ollama.timeout_seconds,
            health_check_timeout=ollama.health_check_timeout,
            num_ctx=ollama.num_ctx,
            keep_alive=ollama.keep_alive,
            think=ollama.think,
            preferred_models=ollama.preferred_models,
            auto_discovery=ollama.auto_discovery,
            pool=pool,
        )
    else:
        ollama_client = OllamaOpenAIClient(
            ollama.base_url,
            default_model=ollama_default,
            dialect=ollama.dialect,
            timeout_seconds=ollama.timeout_seconds,
            health_check_timeout=ollama.health_check_timeout,
            keep_alive=ollama.keep_alive,
            preferred_models=ollama.preferred_models,
            auto_discovery=ollama.auto_discovery,
            pool=pool,
        )
    return {
        Provider.OLLAMA: ollama_client,
        Provider.HUGGINGFACE: HuggingFaceBackend(local.huggingface),
        Provider.OPENAI: OpenAICompatibleClient(
            Provider.OPENAI,
            openai.base_url,
            default_model=openai.default_model,
            api_key_env=openai.api_key_env,
            # OpenAI itself wants max_completion_tokens; compatible servers honour max_tokens.
            max_tokens_field=(
                "max_completion_tokens" if _OPENAI_HOST in openai.base_url else "max_tokens"
            ),
            capabilities=_OPENAI_CAPABILITIES,
            # None: known from the host (api.openai.com), else identified by the server itself.
            dialect=openai.dialect,
            timeout_seconds=openai.timeout_seconds,
            pool=pool,
            env=env,
        ),
        Provider.ANTHROPIC: AnthropicClient(
            anthropic.base_url,
            default_model=anthropic.default_model,
            api_key_env=anthropic.api_key_env,
            timeout_seconds=anthropic.timeout_seconds,
            pool=pool,
            env=env,
        ),
        Provider.OPENROUTER: OpenAICompatibleClient(
            Provider.OPENROUTER,
            openrouter.base_url,
            default_model=openrouter.default_model,
            api_key_env=openrouter.api_key_env,
            extra_headers=openrouter_headers,
            capabilities=_CLOUD_CAPABILITIES,
            dialect="openrouter",
            timeout_seconds=openrouter.timeout_seconds,
            pool=pool,
            env=env,
        ),
    }


def read_timeout_for(config: ForgeConfig, provider: Provider) -> float:
    """Seconds to wait for the first token and between chunks from ``provider``."""
    local = config.providers.local
    cloud = config.providers.cloud
    timeouts = {
        Provider.OLLAMA: local.ollama.timeout_seconds,
        Provider.OPENAI: cloud.openai.timeout_seconds,
        Provider.ANTHROPIC: cloud.anthropic.timeout_seconds,
        Provider.OPENROUTER: cloud.openrouter.timeout_seconds,
    }
    return timeouts.get(provider, config.routing.total_timeout_seconds)
