"""The configuration layer: forge.yaml's schema, its loading, and where local model files are found.

`forge_core.config.schema` is the validated `ForgeConfig`; `forge_core.config.sections` the
provider sections it is made of; `forge_core.config.deployments` how kinds, names and hosts
become deployments; `forge_core.config.loader` the file, the environment, overrides and the
errors that name where a value came from; `forge_core.config.local_models` where local model
files are found. This package re-exports the public names (those ``forge_core`` exports).
"""

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

__all__ = [
    "EMBEDDED_MODEL",
    "AnthropicConfig",
    "CloudProvidersConfig",
    "FallbackConfig",
    "ForgeConfig",
    "HuggingFaceConfig",
    "HuggingFaceModelConfig",
    "LocalProvidersConfig",
    "ModelPreferences",
    "ModelPrice",
    "OllamaConfig",
    "OpenAIConfig",
    "OpenRouterConfig",
    "PricingConfig",
    "ProvidersConfig",
    "RoutingConfig",
    "TelemetryConfig",
    "find_config_file",
    "load_config",
    "routing_overrides",
]
