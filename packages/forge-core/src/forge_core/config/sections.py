"""The provider sections of ``forge.yaml``: the settings each kind of deployment is built from.

``providers.local.ollama`` (and its ``hosts``), ``providers.local.huggingface``,
``providers.cloud.*`` and the entries of ``providers.endpoints``. Also here, because every
section of the file builds on them: `Section`, the base of every section, and `KeyPathError`,
how a validator reports a key below its own section. How these sections become deployments is
`forge_core.config.deployments`; the rest of the file, `forge_core.config.schema`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_LOAD_TIMEOUT_SECONDS",
    "AnthropicConfig",
    "AnthropicEndpointConfig",
    "CloudProvidersConfig",
    "EndpointConfig",
    "HuggingFaceConfig",
    "HuggingFaceModelConfig",
    "KeyPathError",
    "LocalProvidersConfig",
    "OllamaConfig",
    "OllamaEndpointConfig",
    "OllamaHostConfig",
    "OpenAIConfig",
    "OpenAIEndpointConfig",
    "OpenRouterConfig",
    "OpenRouterEndpointConfig",
    "Section",
]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class KeyPathError(ValueError):
    """A validation error about a key below the section that found it (``sub_path``)."""

    def __init__(self, sub_path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.sub_path = sub_path


#: What a deployment name may look like: no ``:`` (it separates a name from a model).
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _BudgetFields(BaseModel):
    """``rpm`` and ``tpm``: a deployment's rate budget (docs/behaviour.md, "Rate budgets")."""

    rpm: int | None = Field(
        default=None,
        ge=1,
        description="Requests per minute forge may send this deployment (per API key, in any "
        "60 s, across the fleet with shared state); over it, the next candidate serves.",
    )
    tpm: int | None = Field(
        default=None,
        ge=1,
        description="Tokens per minute (prompt and answer; estimated until the usage is "
        "reported), counted like rpm.",
    )


class OllamaHostConfig(Section, _BudgetFields):
    """One entry of ``providers.local.ollama.hosts``: an Ollama server with the section's
    settings, routed to as the deployment ``name``."""

    name: str = Field(pattern=_NAME_PATTERN, description="How order, CLI and metrics name it.")
    base_url: str
    load_timeout_seconds: float | None = Field(
        default=None,
        ge=0,
        description="This host's load_timeout_seconds (a bigger or slower box); null: the "
        "section's.",
    )


#: Seconds a cold start may add to the first-token limit by default (a large model on a
#: spinning disk takes minutes; an 8B model from an SSD, seconds).
DEFAULT_LOAD_TIMEOUT_SECONDS = 120.0


class OllamaConfig(Section, _BudgetFields):
    """``providers.local.ollama``: an Ollama server (or any server with Ollama's surface).

    ``hosts`` lists several servers sharing these settings (a laptop and a GPU box); each is a
    deployment of its own (breaker, health, metrics), and ``ollama`` in ``fallback.order``
    means all of them, in the listed order.
    """

    base_url: str = "http://localhost:11434"
    hosts: list[OllamaHostConfig] = Field(
        default_factory=list,
        description="Several Ollama servers by name; when set, base_url is not used.",
    )
    timeout_seconds: float = Field(default=30, gt=0)
    preferred_models: list[str] = Field(default_factory=list)
    auto_discovery: bool = True
    api: Literal["openai", "native"] = Field(
        default="openai",
        description="'openai' uses /v1/chat/completions (the default); 'native' /api/chat.",
    )
    dialect: Literal["openai", "llama-cpp"] = Field(
        default="openai",
        description="How the /v1 server spells structured output: 'llama-cpp' for "
        "llama-cpp-python's server (JSON schema sent as json_object + schema).",
    )
    num_ctx: int | None = Field(
        default=None,
        gt=0,
        description="The smallest context to load models with; a request whose prompt and "
        "answer need more is sent a larger one through the native API, up to the model's own "
        "length. With api: openai (/v1 has no num_ctx) it is the context the server runs /v1 "
        "requests with: set it to the server's OLLAMA_CONTEXT_LENGTH when it has one. None: "
        "Ollama's default (4096).",
    )
    keep_alive: str | int | None = Field(
        default=None,
        description="How long Ollama keeps a model loaded after a request ('10m', seconds, -1 "
        "forever, 0 unload); sent with native chat and preloads. Null: the server's default.",
    )
    think: bool | Literal["low", "medium", "high", "max"] | None = Field(
        default=None, description="Ask thinking models to think (api: native only)."
    )
    health_check_timeout: float = Field(
        default=1.0,
        gt=0,
        description="Seconds the /api/version health probe (and the /api/ps listing of the "
        "loaded models) may take.",
    )
    load_timeout_seconds: float = Field(
        default=DEFAULT_LOAD_TIMEOUT_SECONDS,
        ge=0,
        description="Added to the first-token limit of a request to a host where the model is "
        "not loaded (per /api/ps): Ollama loads it first. A timeout during that load is no "
        "circuit-breaker failure (the request still fails over).",
    )

    @model_validator(mode="after")
    def _base_url_or_hosts(self) -> OllamaConfig:
        if self.hosts and "base_url" in self.model_fields_set:
            raise ValueError("set base_url or hosts, not both (hosts lists every server)")
        return self


class HuggingFaceModelConfig(Section):
    """One entry of ``providers.local.huggingface.models``."""

    name: str
    local_path: str | None = None
    chat_format: str | None = Field(
        default=None,
        description="llama-cpp-python chat format; wins over the GGUF's own template. "
        "Unset: the GGUF's template, else the packaged model's format, else chatml.",
    )
    format: Literal["auto", "gguf", "onnx"] = Field(
        default="auto",
        description="'auto' tells GGUF files from ONNX model directories by what is on disk.",
    )


class HuggingFaceConfig(Section):
    """``providers.local.huggingface``: models run in process (GGUF: llama-cpp-python; ONNX)."""

    cache_dir: str = "~/.cache/huggingface"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    models: list[HuggingFaceModelConfig] = Field(default_factory=list)
    n_ctx: int = Field(default=2048, gt=0)
    n_threads: int | None = Field(default=None, gt=0)
    keep_alive_seconds: float | None = Field(
        default=300.0,
        gt=0,
        description="Unload a model idle this long; null keeps it loaded for the process.",
    )
    parallel: int = Field(
        default=1,
        ge=1,
        description="Loaded instances per model; requests beyond this many wait their turn. "
        "A request takes the idle instance whose last prompt shares the most leading messages "
        "with its own (the next turn of a conversation reuses its KV cache there).",
    )
    isolation: Literal["process", "thread"] = Field(
        default="process",
        description="Where a loaded model runs: 'process', a worker process of forge's own, so "
        "a crash in native code fails one attempt (the router falls back) instead of killing "
        "the application; 'thread', inside the application's process.",
    )


class LocalProvidersConfig(Section):
    """``providers.local``."""

    ollama: OllamaConfig = Field(default_factory=OllamaConfig)
    huggingface: HuggingFaceConfig = Field(default_factory=HuggingFaceConfig)


class _CloudProviderConfig(Section, _BudgetFields):
    base_url: str
    api_key_env: str | None = Field(
        description="Name of the env var holding the API key; null sends no key "
        "(for OpenAI-compatible servers that need none). Keys never live in the file."
    )
    default_model: str
    timeout_seconds: float = Field(default=60, gt=0)


class OpenAIConfig(_CloudProviderConfig):
    """``providers.cloud.openai``; ``base_url`` may point at any OpenAI-compatible server."""

    base_url: str = "https://api.openai.com/v1"
    api_key_env: str | None = "OPENAI_API_KEY"
    default_model: str = "gpt-4o-mini"
    dialect: (
        Literal[
            "openai",
            "openai-compatible",
            "llama-cpp",
            "llama-server",
            "vllm",
            "ollama",
            "lmstudio",
        ]
        | None
    ) = Field(
        default=None,
        description="The server's flavour of the OpenAI format: 'llama-cpp' for "
        "llama-cpp-python's server (JSON schema sent as json_object + schema), 'llama-server' "
        "(llama.cpp), 'vllm', 'ollama' (its /v1), 'lmstudio', 'openai-compatible' (OpenAI's "
        "spelling with max_tokens). Null: known from the host for api.openai.com, else asked "
        "of the server once (docs/providers.md).",
    )


class AnthropicConfig(_CloudProviderConfig):
    """``providers.cloud.anthropic``."""

    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    default_model: str = "claude-3-5-haiku-latest"


class OpenRouterConfig(_CloudProviderConfig):
    """``providers.cloud.openrouter``."""

    base_url: str = "https://openrouter.ai/api/v1"
    api_key_env: str | None = "OPENROUTER_API_KEY"
    default_model: str = "meta-llama/llama-3.1-8b-instruct"
    app_url: str | None = Field(default=None, description="Sent as HTTP-Referer.")
    app_title: str | None = Field(default=None, description="Sent as X-Title.")


class CloudProvidersConfig(Section):
    """``providers.cloud``."""

    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    anthropic: AnthropicConfig = Field(default_factory=AnthropicConfig)
    openrouter: OpenRouterConfig = Field(default_factory=OpenRouterConfig)


class _EndpointFields(BaseModel):
    """The fields every entry of ``providers.endpoints`` adds to its kind's section."""

    name: str = Field(pattern=_NAME_PATTERN, description="How order, CLI and metrics name it.")
    local: bool | None = Field(
        default=None,
        description="Whether it counts as local (local_first, local_only, cost 0). Null: local "
        "for kind ollama and for a base_url on this machine or a private network.",
    )


class OpenAIEndpointConfig(OpenAIConfig, _EndpointFields):
    """An OpenAI-compatible server (vLLM, llama.cpp, LM Studio, a hosted one) by name."""

    kind: Literal["openai"]
    base_url: str
    api_key_env: str | None = None


class OllamaEndpointConfig(OllamaConfig, _EndpointFields):
    """Another Ollama server by name, with settings of its own."""

    kind: Literal["ollama"]
    base_url: str


class AnthropicEndpointConfig(AnthropicConfig, _EndpointFields):
    """Anthropic's API (another key or base URL) by name."""

    kind: Literal["anthropic"]


class OpenRouterEndpointConfig(OpenRouterConfig, _EndpointFields):
    """OpenRouter (another key or base URL) by name."""

    kind: Literal["openrouter"]


#: One entry of ``providers.endpoints``: its ``kind`` says which section's keys it takes.
EndpointConfig = Annotated[
    OpenAIEndpointConfig
    | OllamaEndpointConfig
    | AnthropicEndpointConfig
    | OpenRouterEndpointConfig,
    Field(discriminator="kind"),
]
