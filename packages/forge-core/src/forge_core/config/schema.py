"""The schema of ``forge.yaml``: `ForgeConfig`, the whole validated configuration.

The schema of the shipped ``forge.yaml`` is honoured as written (``providers.local.ollama``,
``providers.local.huggingface``, ``providers.fallback``, ``model_preferences``) and extended
with ``providers.cloud.*`` and ``routing``. This module holds the root, the sections that are
not about deployments (``model_preferences``, ``routing``, ``telemetry``, ``pricing``) and
`read_timeout_for`, which reads two of them at once (a deployment's timeout, else the routing
deadline). ``providers`` is `forge_core.config.deployments`, its sections
`forge_core.config.sections`; reading the file, the environment and overrides into a
`ForgeConfig`, `forge_core.config.loader`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from forge_core.config.deployments import ProvidersConfig, as_kind
from forge_core.config.sections import KeyPathError, Section

__all__ = [
    "ForgeConfig",
    "ModelPreferences",
    "ModelPrice",
    "PricingConfig",
    "RoutingConfig",
    "StateConfig",
    "TelemetryConfig",
    "read_timeout_for",
]


class ModelPreferences(Section):
    """``model_preferences``."""

    default_provider: str | None = Field(
        default=None,
        description="A provider kind or deployment name tried first (before the order).",
    )

    @field_validator("default_provider")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        return None if value is None else as_kind(value)

    default_model: str | None = None
    local_first: bool = True
    local_only: bool = Field(
        default=False, description="Never send a request to a cloud provider (privacy)."
    )


class StateConfig(Section):
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


class RoutingConfig(Section):
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
    affinity: Literal["prefix", "key", "off"] = Field(
        default="prefix",
        description="Among balanced deployments, send a conversation back to the one that "
        "holds its prompt: 'prefix', the one that most recently served the longest prefix "
        "of the request's messages (or the deployment of its conversation key, when it has "
        "one); 'key', only requests with a conversation key (prompt_cache_key, a LangChain "
        "thread_id or session_id); 'off', load alone decides.",
    )
    affinity_imbalance: int = Field(
        default=2,
        ge=0,
        description="A deployment with more than this many attempts in flight above the "
        "least loaded one is passed over by affinity (the conversation moves with the "
        "request): load wins.",
    )
    affinity_ttl_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a deployment counts as holding a prompt it served (a server's "
        "KV cache does not last forever: it serves other prompts, Ollama unloads an idle "
        "model after 5 minutes). With Redis state, what the fleet learned expires as well.",
    )
    state: StateConfig = Field(
        default_factory=StateConfig,
        description="Where breakers and health live: this process, or Redis shared by the fleet.",
    )


class TelemetryConfig(Section):
    """``telemetry``: OpenTelemetry spans and metrics (docs/observability.md)."""

    enabled: bool = Field(
        default=True,
        description="Emit OpenTelemetry GenAI spans and metrics when opentelemetry-api is "
        "installed (forge-core[otel]); they go wherever the application's OpenTelemetry SDK "
        "sends them, and cost next to nothing without one.",
    )


class ModelPrice(Section):
    """One entry of ``pricing.models``: US dollars per million tokens."""

    input: float = Field(ge=0, description="USD per million input (prompt) tokens.")
    output: float = Field(default=0.0, ge=0, description="USD per million output tokens.")
    cached_input_per_million: float | None = Field(
        default=None,
        ge=0,
        description="USD per million input tokens read from the provider's prompt cache; "
        "None: the input price.",
    )
    cache_creation_input_per_million: float | None = Field(
        default=None,
        ge=0,
        description="USD per million input tokens written to the provider's prompt cache "
        "(Anthropic bills a 5-minute cache write at 1.25x the input price); None: the input "
        "price.",
    )


class PricingConfig(Section):
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


class ForgeConfig(Section):
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
            raise KeyPathError(
                ("model_preferences", "default_provider"), self.providers.unknown(default)
            )
        return self


def read_timeout_for(config: ForgeConfig, deployment: str) -> float:
    """Seconds to wait for the first token and between chunks from ``deployment`` (a name;
    in-process models and unknown names: the total deadline)."""
    spec = config.providers.deployments.get(deployment)
    timeout = spec.timeout_seconds if spec is not None else None
    return timeout if timeout is not None else config.routing.total_timeout_seconds
