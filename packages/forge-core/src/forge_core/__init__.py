"""forge-core: local-first LLM provider routing.

`Forge` routes chat requests across local models (Ollama, GGUF in process) and cloud providers
(OpenAI, Anthropic, OpenRouter) with fallback; everything else here is its vocabulary.
Heavy optional dependencies (llama-cpp-python) are imported only when a local model runs.
"""

from forge_core._version import __version__
from forge_core.config.deployments import FallbackConfig, ProvidersConfig
from forge_core.config.loader import find_config_file, load_config, routing_overrides
from forge_core.config.local_models import EMBEDDED_MODEL
from forge_core.config.schema import (
    ForgeConfig,
    ModelPreferences,
    ModelPrice,
    PricingConfig,
    RoutingConfig,
    TelemetryConfig,
)
from forge_core.config.sections import (
    AnthropicConfig,
    CloudProvidersConfig,
    HuggingFaceConfig,
    HuggingFaceModelConfig,
    LocalProvidersConfig,
    OllamaConfig,
    OpenAIConfig,
    OpenRouterConfig,
)
from forge_core.embedder import Embedder
from forge_core.errors import (
    AuthenticationFailed,
    BadRequest,
    CapabilityMismatch,
    ConfigError,
    FallbackFailed,
    ForgeError,
    ForgeTimeout,
    MalformedResponse,
    MissingDependency,
    ModelNotFound,
    OllamaUnavailable,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    StreamInterrupted,
    WorkerCrashed,
)
from forge_core.forge import Forge, MessagesInput
from forge_core.observability.otel import set_telemetry_providers
from forge_core.observability.pricing import Pricing
from forge_core.observability.prometheus import prometheus_text
from forge_core.options import ChatOptions, ForgeOptions, unknown_options
from forge_core.shared import (
    ForgeSource,
    clear_shared_forges,
    close_shared_forges,
    config_identity,
    shared_forge,
)
from forge_core.tool_calls import ToolCallAccumulator
from forge_core.types import (
    CALL_PARAMETERS,
    SAMPLING_PARAMETERS,
    Attempt,
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Drop,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    ModelId,
    ModelRequirements,
    Provider,
    RouteTrail,
    ToolCall,
    ToolCallDelta,
    Usage,
    json_schema_format,
    resolve_tool_choice,
)

__all__ = [
    "CALL_PARAMETERS",
    "EMBEDDED_MODEL",
    "SAMPLING_PARAMETERS",
    "AnthropicConfig",
    "Attempt",
    "AuthenticationFailed",
    "BadRequest",
    "Capabilities",
    "CapabilityMismatch",
    "ChatChunk",
    "ChatOptions",
    "ChatRequest",
    "ChatResponse",
    "CloudProvidersConfig",
    "ConfigError",
    "Drop",
    "Embedder",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "FallbackConfig",
    "FallbackFailed",
    "Forge",
    "ForgeConfig",
    "ForgeError",
    "ForgeOptions",
    "ForgeSource",
    "ForgeTimeout",
    "HuggingFaceConfig",
    "HuggingFaceModelConfig",
    "LocalProvidersConfig",
    "MalformedResponse",
    "Message",
    "MessagesInput",
    "MissingDependency",
    "ModelId",
    "ModelNotFound",
    "ModelPreferences",
    "ModelPrice",
    "ModelRequirements",
    "OllamaConfig",
    "OllamaUnavailable",
    "OpenAIConfig",
    "OpenRouterConfig",
    "Pricing",
    "PricingConfig",
    "Provider",
    "ProviderError",
    "ProviderUnavailable",
    "ProvidersConfig",
    "RateLimited",
    "RouteTrail",
    "RoutingConfig",
    "StreamInterrupted",
    "TelemetryConfig",
    "ToolCall",
    "ToolCallAccumulator",
    "ToolCallDelta",
    "Usage",
    "WorkerCrashed",
    "__version__",
    "clear_shared_forges",
    "close_shared_forges",
    "config_identity",
    "find_config_file",
    "json_schema_format",
    "load_config",
    "prometheus_text",
    "resolve_tool_choice",
    "routing_overrides",
    "set_telemetry_providers",
    "shared_forge",
    "unknown_options",
]
