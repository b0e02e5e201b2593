"""Provider backends, one per deployment, all implementing `ChatBackend`; those whose
endpoint embeds also implement `EmbeddingBackend`."""

from __future__ import annotations

from collections.abc import Mapping

from forge_core.backends import profiles
from forge_core.backends.base import (
    AttemptTimeouts,
    ChatBackend,
    EmbeddingBackend,
    ModelCatalog,
    ModelDescriber,
    ModelInfo,
)
from forge_core.backends.http.anthropic import AnthropicClient
from forge_core.backends.http.ollama.admin import (
    OllamaAdmin,
    OllamaModel,
    OllamaModelDetails,
    OllamaModelInfo,
    OllamaRunningModel,
    PullProgress,
    ollama_admin,
)
from forge_core.backends.http.ollama.native import OllamaClient
from forge_core.backends.http.ollama.openai import OllamaOpenAIClient
from forge_core.backends.http.openai.client import OpenAICompatibleClient
from forge_core.backends.http.pool import ClientPool
from forge_core.backends.local.backend import HuggingFaceBackend, LlamaCppBackend
from forge_core.config.deployments import DeploymentSpec
from forge_core.config.schema import ForgeConfig
from forge_core.config.sections import (
    AnthropicConfig,
    HuggingFaceConfig,
    OllamaConfig,
    OpenRouterConfig,
)
from forge_core.types import Provider

__all__ = [
    "AnthropicClient",
    "AttemptTimeouts",
    "ChatBackend",
    "EmbeddingBackend",
    "LlamaCppBackend",
    "ModelCatalog",
    "ModelDescriber",
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
    "build_backend",
    "build_backends",
    "ollama_admin",
]

#: Ollama model used when ``preferred_models`` is empty and the request names none.
OLLAMA_FALLBACK_MODEL = "llama3.2"
_OPENAI_HOST = "api.openai.com"


def build_backends(
    config: ForgeConfig, *, pool: ClientPool | None = None, env: Mapping[str, str] | None = None
) -> dict[str, ChatBackend]:
    """One backend per deployment of ``config`` (`ProvidersConfig.deployments`), by name.

    The default deployments are named after their provider kind, and `Provider` is a string
    enum, so ``backends[Provider.OPENAI]`` finds ``providers.cloud.openai``'s client.
    """
    return {
        name: build_backend(spec, pool=pool, env=env)
        for name, spec in config.providers.deployments.items()
    }


def build_backend(
    spec: DeploymentSpec, *, pool: ClientPool | None = None, env: Mapping[str, str] | None = None
) -> ChatBackend:
    """The client of one deployment, from its kind and its config section."""
    section = spec.section
    if isinstance(section, HuggingFaceConfig):
        return HuggingFaceBackend(section)
    if isinstance(section, OllamaConfig):
        default = (section.preferred_models or [OLLAMA_FALLBACK_MODEL])[0]
        if section.api == "native":
            return OllamaClient(
                section.base_url,
                default_model=default,
                timeout_seconds=section.timeout_seconds,
                health_check_timeout=section.health_check_timeout,
                num_ctx=section.num_ctx,
                keep_alive=section.keep_alive,
                think=section.think,
                preferred_models=section.preferred_models,
                auto_discovery=section.auto_discovery,
                pool=pool,
            )
        return OllamaOpenAIClient(
            section.base_url,
            default_model=default,
            dialect=section.dialect,
            timeout_seconds=section.timeout_seconds,
            health_check_timeout=section.health_check_timeout,
            num_ctx=section.num_ctx,
            keep_alive=section.keep_alive,
            preferred_models=section.preferred_models,
            auto_discovery=section.auto_discovery,
            pool=pool,
        )
    if isinstance(section, AnthropicConfig):
        return AnthropicClient(
            section.base_url,
            default_model=section.default_model,
            api_key_env=section.api_key_env,
            timeout_seconds=section.timeout_seconds,
            pool=pool,
            env=env,
        )
    if isinstance(section, OpenRouterConfig):
        headers = {
            name: value
            for name, value in (("HTTP-Referer", section.app_url), ("X-Title", section.app_title))
            if value
        }
        return OpenAICompatibleClient(
            Provider.OPENROUTER,
            section.base_url,
            default_model=section.default_model,
            api_key_env=section.api_key_env,
            extra_headers=headers,
            capabilities=profiles.OPENROUTER,
            dialect="openrouter",
            timeout_seconds=section.timeout_seconds,
            pool=pool,
            env=env,
        )
    return OpenAICompatibleClient(
        Provider.OPENAI,
        section.base_url,
        default_model=section.default_model,
        api_key_env=section.api_key_env,
        # OpenAI itself wants max_completion_tokens; compatible servers honour max_tokens.
        max_tokens_field=(
            "max_completion_tokens" if _OPENAI_HOST in section.base_url else "max_tokens"
        ),
        capabilities=profiles.OPENAI,
        # None: known from the host (api.openai.com), else identified by the server itself.
        dialect=section.dialect,
        timeout_seconds=section.timeout_seconds,
        pool=pool,
        env=env,
    )
