"""`forge.yaml` -> validated `ForgeConfig`.

The schema of the shipped `forge.yaml` is honoured as written (``providers.local.ollama``,
``providers.local.huggingface``, ``providers.fallback``, ``model_preferences``) and extended
with ``providers.cloud.*`` and ``routing``. Precedence, in one function (`load_config`):
constructor kwargs > ``FORGE_*`` env vars > the file > built-in defaults.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from forge_core.errors import ConfigError
from forge_core.types import Provider

__all__ = [
    "AnthropicConfig",
    "CloudProvidersConfig",
    "DeploymentSpec",
    "EndpointConfig",
    "FallbackConfig",
    "ForgeConfig",
    "HuggingFaceConfig",
    "HuggingFaceModelConfig",
    "LocalProvidersConfig",
    "ModelPreferences",
    "ModelPrice",
    "OllamaConfig",
    "OllamaHostConfig",
    "OpenAIConfig",
    "OpenRouterConfig",
    "PricingConfig",
    "ProvidersConfig",
    "RoutingConfig",
    "TelemetryConfig",
    "apply_overrides",
    "find_config_file",
    "load_config",
    "routing_overrides",
]

DEFAULT_CONFIG_NAME = "forge.yaml"
_SECRET_KEY = re.compile(r"(key|token|secret|password|authorization)", re.IGNORECASE)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


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


class OllamaHostConfig(_Section, _BudgetFields):
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


class OllamaConfig(_Section, _BudgetFields):
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
        default=None, gt=0, description="Context window to load models with (api: native only)."
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


class HuggingFaceModelConfig(_Section):
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


class HuggingFaceConfig(_Section):
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
        description="Loaded instances per model; requests beyond this many wait their turn.",
    )
    isolation: Literal["process", "thread"] = Field(
        default="process",
        description="Where a loaded model runs: 'process', a worker process of forge's own, so "
        "a crash in native code fails one attempt (the router falls back) instead of killing "
        "the application; 'thread', inside the application's process.",
    )


class LocalProvidersConfig(_Section):
    """``providers.local``."""

    ollama: OllamaConfig = Field(default_factory=OllamaConfig)
    huggingface: HuggingFaceConfig = Field(default_factory=HuggingFaceConfig)


class _CloudProviderConfig(_Section, _BudgetFields):
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


class CloudProvidersConfig(_Section):
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

#: The config section a deployment is built from.
DeploymentSection = (
    OllamaConfig | HuggingFaceConfig | OpenAIConfig | AnthropicConfig | OpenRouterConfig
)


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as the config declares it: a name, a provider kind and its settings.

    The default deployments are named after their kind (``ollama``, ``huggingface``,
    ``openai``, ``anthropic``, ``openrouter``); ``providers.local.ollama.hosts`` and
    ``providers.endpoints`` add named ones.
    """

    name: str
    kind: Provider
    #: Local deployments come first with ``local_first``, are allowed with ``local_only`` and
    #: cost nothing.
    local: bool
    section: DeploymentSection

    @property
    def timeout_seconds(self) -> float | None:
        """The section's read timeout (None for in-process models: the total deadline)."""
        return getattr(self.section, "timeout_seconds", None)

    @property
    def rpm(self) -> int | None:
        """Requests per minute this deployment may be sent (None: no budget)."""
        return getattr(self.section, "rpm", None)

    @property
    def tpm(self) -> int | None:
        """Tokens per minute this deployment may be sent (None: no budget)."""
        return getattr(self.section, "tpm", None)

    @property
    def load_timeout_seconds(self) -> float:
        """Seconds a cold start adds to the first-token limit (Ollama's; 0 for the others)."""
        return float(getattr(self.section, "load_timeout_seconds", 0.0))


def _as_kind(text: str) -> str:
    """A provider kind as its `Provider` member (a string too); any other text unchanged."""
    try:
        return Provider(text.strip().lower())
    except ValueError:
        return text


class _KeyPathError(ValueError):
    """A validation error about a key below the section that found it (``sub_path``)."""

    def __init__(self, sub_path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.sub_path = sub_path


def _on_private_network(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


class FallbackConfig(_Section):
    """``providers.fallback``: whether and in which order to try other deployments.

    Each ``order`` entry is a provider kind (all its deployments, in config order), a
    deployment name (an Ollama host or a ``providers.endpoints`` entry), or either with a
    model (``openai:gpt-4o``, ``gpu-box:llama3.1:8b``), so model-level chains work within and
    across providers.
    """

    enabled: bool = True
    order: list[str] = Field(
        default_factory=lambda: [
            Provider.OLLAMA.value,
            Provider.HUGGINGFACE.value,
            Provider.OPENAI.value,
            Provider.ANTHROPIC.value,
            Provider.OPENROUTER.value,
        ]
    )

    @field_validator("order")
    @classmethod
    def _no_repeats(cls, order: list[str]) -> list[str]:
        order = [_as_kind(entry) for entry in order]
        seen: set[str] = set()
        for entry in order:
            if entry in seen:
                raise ValueError(f"'{entry}' is listed twice")
            seen.add(entry)
        return order


class ProvidersConfig(_Section):
    """``providers``: the deployments (``local``, ``cloud``, ``endpoints``) and their order."""

    local: LocalProvidersConfig = Field(default_factory=LocalProvidersConfig)
    cloud: CloudProvidersConfig = Field(default_factory=CloudProvidersConfig)
    endpoints: list[EndpointConfig] = Field(
        default_factory=list,
        description="More deployments by name, each with a kind (openai, ollama, anthropic, "
        "openrouter) and that kind's keys.",
    )
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)

    _deployments: dict[str, DeploymentSpec] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve_deployments(self) -> ProvidersConfig:
        deployments: dict[str, DeploymentSpec] = {}
        ollama = self.local.ollama
        if ollama.hosts:
            for host in ollama.hosts:
                update: dict[str, Any] = {"base_url": host.base_url, "hosts": []}
                for key in ("load_timeout_seconds", "rpm", "tpm"):
                    if getattr(host, key) is not None:
                        update[key] = getattr(host, key)
                own = ollama.model_copy(update=update)
                deployments[host.name] = DeploymentSpec(host.name, Provider.OLLAMA, True, own)
        else:
            deployments["ollama"] = DeploymentSpec("ollama", Provider.OLLAMA, True, ollama)
        deployments["huggingface"] = DeploymentSpec(
            "huggingface", Provider.HUGGINGFACE, True, self.local.huggingface
        )
        clouds: tuple[tuple[Provider, DeploymentSection], ...] = (
            (Provider.OPENAI, self.cloud.openai),
            (Provider.ANTHROPIC, self.cloud.anthropic),
            (Provider.OPENROUTER, self.cloud.openrouter),
        )
        for kind, cloud in clouds:
            deployments[kind.value] = DeploymentSpec(kind.value, kind, False, cloud)
        kinds = {provider.value for provider in Provider}
        named: list[tuple[tuple[int | str, ...], str]] = [
            (("local", "ollama", "hosts", i, "name"), h.name) for i, h in enumerate(ollama.hosts)
        ]
        for index, endpoint in enumerate(self.endpoints):
            kind = Provider(endpoint.kind)
            local = endpoint.local
            if local is None:
                local = kind is Provider.OLLAMA or _on_private_network(endpoint.base_url)
            named.append((("endpoints", index, "name"), endpoint.name))
            deployments.setdefault(
                endpoint.name, DeploymentSpec(endpoint.name, kind, local, endpoint)
            )
        seen: set[str] = set()
        for key_path, name in named:
            if name in kinds:
                raise _KeyPathError(
                    key_path, f"'{name}' is a provider kind; a deployment needs another name"
                )
            if name in seen:
                raise _KeyPathError(key_path, f"'{name}' names two deployments")
            seen.add(name)
        self._deployments = deployments
        for index, entry in enumerate(self.fallback.order):
            if self.resolve(entry) is None:
                raise _KeyPathError(("fallback", "order", index), self.unknown(entry))
        return self

    def unknown(self, entry: str) -> str:
        """The error message for an order entry or name that means no deployment."""
        known = sorted({p.value for p in Provider} | set(self._deployments))
        return f"'{entry}' is neither a provider kind nor a deployment name (known: {', '.join(known)})"

    def ordered_names(self) -> list[str]:
        """Every deployment the fallback order names (kinds expanded), in order, each once."""
        names: list[str] = []
        for entry in self.fallback.order:
            for name, _ in self.resolve(entry) or []:
                if name not in names:
                    names.append(name)
        return names

    @property
    def deployments(self) -> dict[str, DeploymentSpec]:
        """Every deployment by name, in config order (local sections, cloud, endpoints)."""
        return self._deployments

    def resolve(self, entry: str) -> list[tuple[str, str | None]] | None:
        """The deployments (and model, if named) an order entry or model id means.

        A kind means all its deployments (with a model: its own one, `named`); a name, that
        deployment; either may be followed by ``:model`` (only the text before the first ``:`` is the name, so Ollama tags such as
        ``llama3.1:8b`` stay whole). None when the text before ``:`` is neither.
        """
        head, sep, model = entry.partition(":")
        names = self.named(head, with_model=bool(sep and model))
        if names is None:
            return None
        return [(name, (model or None) if sep else None) for name in names]

    def named(self, text: str, *, with_model: bool = False) -> list[str] | None:
        """The deployments a kind or a deployment name means; None if neither.

        A bare kind means all its deployments; with a model (``openai:gpt-4o``) it means the
        kind's own deployment (``providers.cloud.openai``), not every server of that kind,
        unless there is none of that name (Ollama ``hosts``: all of them).
        """
        if text in self._deployments and text not in _KIND_VALUES:
            return [text]
        lowered = text.strip().lower()
        if lowered not in _KIND_VALUES:
            return None
        if with_model and lowered in self._deployments:
            return [lowered]
        return [name for name, spec in self._deployments.items() if spec.kind.value == lowered]


_KIND_VALUES = frozenset(provider.value for provider in Provider)


class ModelPreferences(_Section):
    """``model_preferences``."""

    default_provider: str | None = Field(
        default=None,
        description="A provider kind or deployment name tried first (before the order).",
    )

    @field_validator("default_provider")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        return None if value is None else _as_kind(value)

    default_model: str | None = None
    local_first: bool = True
    local_only: bool = Field(
        default=False, description="Never send a request to a cloud provider (privacy)."
    )


class StateConfig(_Section):
    """``routing.state``: where breakers and health live (docs/behaviour.md, "Shared state").

    ``memory`` (the default) keeps them in this process; ``redis`` shares them with every
    process using the same ``url`` and ``key_prefix`` (needs forge-core[redis]). A bare string
    (``state: redis`` is not enough: it needs a url) names the backend.
    """

    backend: Literal["memory", "redis"] = Field(
        default="memory",
        description="memory: per process, as without this section; redis: shared by the fleet.",
    )
    url: str | None = Field(
        default=None,
        repr=False,
        description="The Redis URL, e.g. redis://127.0.0.1:6379/0 (a password in it is never "
        "logged or shown).",
    )
    key_prefix: str = Field(
        default="forge",
        min_length=1,
        description="Prefix of every key forge writes: two configs on one Redis stay apart.",
    )
    timeout_seconds: float = Field(
        default=0.05, gt=0, description="Bound of every Redis call (connect and read)."
    )
    cache_ttl_seconds: float = Field(
        default=0.02,
        ge=0,
        description="How long a shared breaker or health entry read is reused locally: the "
        "most another process's change can be late, besides one Redis round trip.",
    )
    retry_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="After Redis failed, routing uses local state while a background thread "
        "tries Redis again this often.",
    )

    @model_validator(mode="before")
    @classmethod
    def _backend_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"backend": value}
        return value

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("routing.state.backend redis needs a url (redis://host:port/db)")
        return self


class RoutingConfig(_Section):
    """``routing``: deadlines, retries, circuit breakers and the mid-stream failure policy."""

    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    total_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Bounds the whole request: every retry and every fallback included.",
    )
    first_token_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Wait this long for the first content token (the whole answer when not "
        "streaming); null uses the provider's timeout_seconds.",
    )
    idle_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Wait this long between two chunks of a stream; null uses the provider's "
        "timeout_seconds.",
    )
    max_retries: int = Field(
        default=2, ge=0, description="Retries of one candidate after a retryable error."
    )
    retry_initial_backoff_seconds: float = Field(default=0.5, ge=0)
    retry_max_backoff_seconds: float = Field(default=8.0, ge=0)
    retry_jitter_seconds: float = Field(
        default=0.5, ge=0, description="Up to this much random delay is added to each backoff."
    )
    retry_after_cap_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A Retry-After up to this long is waited out; a longer one is not retried.",
    )
    retry_before_failover: Literal["never", "local", "always"] = Field(
        default="never",
        description="While another candidate is left, a failed attempt fails over at once "
        "(never); or a transient server error (HTTP 5xx) is first retried with backoff on a "
        "local candidate (local: try your own hardware again before paying for the cloud) "
        "or on any candidate (always). The last candidate is always retried.",
    )
    breaker_failure_threshold: int = Field(
        default=3,
        ge=1,
        description="Failures of this many consecutive distinct requests open an endpoint's "
        "circuit (the retries of one request count once).",
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, description="How long a circuit stays open before one probe."
    )
    breaker_max_cooldown_seconds: float = Field(
        default=600.0, gt=0, description="The cooldown doubles on each re-opening, up to this."
    )
    breaker_open_on_timeout: bool = Field(
        default=True,
        description="A timeout opens the endpoint's circuit at once: a stalled endpoint costs "
        "the full timeout on every call, so only the first call should pay it.",
    )
    midstream: Literal["raise", "continue"] = Field(
        default="raise",
        description="When a stream dies after its first token: 'raise' StreamInterrupted with "
        "the partial text, or 'continue' by asking the next candidate to carry on from it.",
    )
    health_ttl_seconds: float = Field(
        default=30.0, gt=0, description="How long a health probe's result is trusted."
    )
    balance: Literal["warm-first", "ordered"] = Field(
        default="warm-first",
        description="How the deployments of one order entry that serve the same model are "
        "ordered: 'warm-first', a host with the model loaded (Ollama's /api/ps) before one "
        "where it would load, then the fewest requests in flight, then the lowest recent "
        "latency; 'ordered', the config order. The model order comes first either way.",
    )
    state: StateConfig = Field(
        default_factory=StateConfig,
        description="Where breakers and health live: this process, or Redis shared by the fleet.",
    )


class TelemetryConfig(_Section):
    """``telemetry``: OpenTelemetry spans and metrics (docs/observability.md)."""

    enabled: bool = Field(
        default=True,
        description="Emit OpenTelemetry GenAI spans and metrics when opentelemetry-api is "
        "installed (forge-core[otel]); they go wherever the application's OpenTelemetry SDK "
        "sends them, and cost next to nothing without one.",
    )


class ModelPrice(_Section):
    """One entry of ``pricing.models``: US dollars per million tokens."""

    input: float = Field(ge=0, description="USD per million input (prompt) tokens.")
    output: float = Field(default=0.0, ge=0, description="USD per million output tokens.")


class PricingConfig(_Section):
    """``pricing``: what each model costs, for per-call cost and ``Forge.stats()`` spend."""

    defaults: bool = Field(
        default=True,
        description="Start from forge's packaged prices for the cloud models it names.",
    )
    models: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Prices by 'provider:model' or bare model name; win over the defaults. "
        "Local models cost 0 unless named here.",
    )


class ForgeConfig(_Section):
    """The whole validated configuration."""

    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    model_preferences: ModelPreferences = Field(default_factory=ModelPreferences)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)

    #: Where the file came from, if any (for messages); not part of the schema.
    source: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _default_provider_exists(self) -> ForgeConfig:
        default = self.model_preferences.default_provider
        if default is not None and self.providers.named(default) is None:
            # Raised here, where both sections are known; reported at the key itself.
            raise _KeyPathError(
                ("model_preferences", "default_provider"), self.providers.unknown(default)
            )
        return self


# Env vars forge reads, each mapped onto one key path.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "FORGE_DEFAULT_PROVIDER": ("model_preferences", "default_provider"),
    "FORGE_DEFAULT_MODEL": ("model_preferences", "default_model"),
    "FORGE_LOCAL_FIRST": ("model_preferences", "local_first"),
    "FORGE_LOCAL_ONLY": ("model_preferences", "local_only"),
    "FORGE_FALLBACK_ENABLED": ("providers", "fallback", "enabled"),
    "FORGE_FALLBACK_ORDER": ("providers", "fallback", "order"),
    "FORGE_OLLAMA_BASE_URL": ("providers", "local", "ollama", "base_url"),
}


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: explicit path, ``$FORGE_CONFIG``, ``./forge.yaml``, user dir.

    An explicit path or ``$FORGE_CONFIG`` that does not exist is an error, not a silent default.
    """
    for named, origin in ((explicit, "path"), (os.environ.get("FORGE_CONFIG"), "FORGE_CONFIG")):
        if named:
            path = Path(named).expanduser()
            if not path.is_file():
                raise ConfigError(f"{path}: config file not found (from {origin})", path=str(path))
            return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    if local.is_file():
        return local
    import platformdirs

    user = Path(platformdirs.user_config_dir("forge")) / DEFAULT_CONFIG_NAME
    return user if user.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ForgeConfig:
    """Build the config: ``overrides`` > ``FORGE_*`` env > the file > defaults.

    ``overrides`` is a nested mapping with the file's shape (``{"model_preferences":
    {"local_only": True}}``). Every error is a `ConfigError` naming its source and key path.
    """
    env = os.environ if env is None else env
    file = find_config_file(path)
    layers: list[tuple[str, dict[str, Any]]] = []
    if file is not None:
        layers.append((str(file), _read_yaml(file)))
    env_layer, env_sources = _env_layer(env)
    if env_layer:
        layers.append(("environment", env_layer))
    if overrides:
        layers.append(("arguments", _to_plain(overrides)))

    merged: dict[str, Any] = {}
    for _, data in layers:
        merged = _deep_merge(merged, data)
    merged = _interpolate(merged, env, str(file) if file else "config")
    try:
        config = ForgeConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, layers, env_sources) from None
    config.source = str(file) if file else None
    return config


def routing_overrides(
    *,
    fallback_order: Sequence[str] | None = None,
    local_first: bool | None = None,
    local_only: bool | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> dict[str, Any]:
    """The ``Forge(overrides=...)`` mapping for the routing options a framework model exposes.

    ``fallback_order`` -> ``providers.fallback.order``; ``local_first`` / ``local_only`` ->
    ``model_preferences``; ``timeout`` -> ``routing.total_timeout_seconds``; ``max_retries``
    -> ``routing.max_retries``. None leaves the key out, so the config file (or the default)
    decides.
    """
    overrides: dict[str, Any] = {}
    if fallback_order is not None:
        overrides["providers"] = {"fallback": {"order": list(fallback_order)}}
    preferences = {
        key: value
        for key, value in (("local_first", local_first), ("local_only", local_only))
        if value is not None
    }
    if preferences:
        overrides["model_preferences"] = preferences
    routing: dict[str, Any] = {}
    if timeout is not None:
        routing["total_timeout_seconds"] = timeout
    if max_retries is not None:
        routing["max_retries"] = max_retries
    if routing:
        overrides["routing"] = routing
    return overrides


def apply_overrides(config: ForgeConfig, overrides: Mapping[str, Any]) -> ForgeConfig:
    """``config`` with ``overrides`` (the file's shape) on top, validated like `load_config`."""
    origin = config.source or "config"
    layers = [(origin, config.model_dump(mode="json")), ("arguments", _to_plain(overrides))]
    try:
        merged = ForgeConfig.model_validate(_deep_merge(layers[0][1], layers[1][1]))
    except ValidationError as exc:
        raise _config_error(exc, layers, {}) from None
    merged.source = config.source
    return merged


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{file}: malformed YAML{where}: {problem}", path=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}", path=str(file)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: expected a mapping at the top level, got {type(data).__name__}",
            path=str(file),
        )
    return data


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    layer: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for name, key_path in ENV_VARS.items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        value: Any = [part.strip() for part in raw.split(",") if part.strip()]
        if key_path[-1] != "order":
            value = raw.strip()
        node = layer
        for key in key_path[:-1]:
            node = node.setdefault(key, {})
        node[key_path[-1]] = value
        sources[key_path] = name
    return layer, sources


def _to_plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, Mapping):
        return {key: _to_plain(item) for key, item in value.items()}
    return value


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _interpolate(value: Any, env: Mapping[str, str], origin: str, key_path: str = "") -> Any:
    """Replace ``${VAR}`` in string values; an unset variable is an error naming it."""
    if isinstance(value, dict):
        return {
            key: _interpolate(item, env, origin, f"{key_path}.{key}" if key_path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(item, env, origin, f"{key_path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{origin}: {key_path}: environment variable {name} is not set",
                    path=origin,
                    key_path=key_path,
                )
            return env[name]

        return _ENV_REF.sub(substitute, value)
    return value


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _lookup(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Whether ``loc`` names a value present in ``data``."""
    for part in loc:
        if isinstance(data, dict):
            if part not in data:
                return False
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """``loc`` without the ``kind`` tag pydantic inserts after ``endpoints[i]``."""
    parts = list(loc)
    for i in range(len(parts) - 2):
        if (
            parts[i] == "endpoints"
            and isinstance(parts[i + 1], int)
            and parts[i + 2] in _KIND_VALUES
        ):
            del parts[i + 2]
            break
    return tuple(parts)


def _value_at(layers: list[tuple[str, dict[str, Any]]], loc: tuple[int | str, ...]) -> Any:
    """The value at ``loc`` in the topmost layer that has one (None if none does)."""
    for _, data in reversed(layers):
        if _lookup(data, loc):
            value: Any = data
            for part in loc:
                value = value[part]
            return value
    return None


def _config_error(
    exc: ValidationError,
    layers: list[tuple[str, dict[str, Any]]],
    env_sources: dict[tuple[str, ...], str],
) -> ConfigError:
    lines = []
    first_origin = None
    first_key = None
    for error in exc.errors():
        loc = _without_union_tags(tuple(error["loc"]))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _KeyPathError):
            loc += cause.sub_path
            error = {**error, "msg": str(cause), "input": _value_at(layers, loc)}
        key_path = _format_loc(loc)
        origin = "defaults"
        for name, data in reversed(layers):
            if _lookup(data, loc):
                origin = name
                break
        if origin == "environment":
            origin = next(
                (var for path, var in env_sources.items() if loc[: len(path)] == path),
                "environment",
            )
        if error["type"] == "extra_forbidden":
            detail = "unknown key"
        elif error["type"] == "missing":
            detail = "missing key"
            origin = next(
                (name for name, data in reversed(layers) if _lookup(data, loc[:-1])), origin
            )
        else:
            detail = error["msg"]
            if not any(_SECRET_KEY.search(str(part)) for part in loc):
                detail += f", got {_short_repr(error.get('input'))}"
        lines.append(f"{origin}: {key_path}: {detail}")
        first_origin = first_origin or origin
        first_key = first_key or key_path
    header = "invalid forge configuration" if len(lines) > 1 else lines[0]
    message = header if len(lines) == 1 else header + ":\n  " + "\n  ".join(lines)
    file_names = {name for name, _ in layers} - {"environment", "arguments"}
    path = first_origin if first_origin in file_names else None
    return ConfigError(message, path=path, key_path=first_key)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_timeout_for(config: ForgeConfig, deployment: str) -> float:
    """Seconds to wait for the first token and between chunks from ``deployment`` (a name;
    in-process models and unknown names: the total deadline)."""
    spec = config.providers.deployments.get(deployment)
    timeout = spec.timeout_seconds if spec is not None else None
    return timeout if timeout is not None else config.routing.total_timeout_seconds
