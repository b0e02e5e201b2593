"""The ``ollama`` provider as a package; `native` holds it whole until it is split."""

from forge_core.backends.http.ollama.native import (
    DEFAULT_OLLAMA_EMBEDDING_MODEL,
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

__all__ = [
    "DEFAULT_OLLAMA_EMBEDDING_MODEL",
    "OllamaAdmin",
    "OllamaClient",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaModelInfo",
    "OllamaOpenAIClient",
    "OllamaRunningModel",
    "PullProgress",
    "ollama_admin",
]
