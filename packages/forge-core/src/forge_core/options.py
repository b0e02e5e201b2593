"""The options every framework wrapper takes, defined once: which config, how to route, and
the endpoint of the provider a model pins.

`ForgeChat` and `ForgeEmbeddings` (LangChain), `ForgeLLM` and `ForgeEmbedding` (LlamaIndex)
all inherit `ForgeOptions`, so each option has one name, one meaning and one check, and the
wrappers only translate their framework's types. Each wrapper adds its own ``model`` field
(a chat model or an embedding model); `ForgeOptions` reads it to know which provider
``base_url`` and ``api_key`` configure.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator

from forge_core.config.loader import routing_overrides
from forge_core.config.schema import ForgeConfig
from forge_core.forge import Forge
from forge_core.shared import ForgeSource
from forge_core.types import (
    REASONING_FIELDS,
    SAMPLING_PARAMETERS,
    ModelId,
    Provider,
    ReasoningEffort,
)

__all__ = [
    "API_KEY_ENV",
    "ENDPOINT_SECTIONS",
    "RENAMED_OPTIONS",
    "ChatOptions",
    "ForgeOptions",
    "unknown_options",
]

#: Name under which an ``api_key`` option is handed to forge's provider clients: it exists only
#: in the private layer those clients read keys from, never in ``os.environ``. One name for
#: every wrapper, so a chat model and embeddings given the same key and routing options share
#: one `Forge` (one set of breakers and health for both).
API_KEY_ENV = "FORGECHAT_API_KEY"

#: The providers an ``api_key`` / ``base_url`` option can configure, and their config section.
ENDPOINT_SECTIONS: dict[Provider, tuple[str, str]] = {
    Provider.OPENAI: ("cloud", "openai"),
    Provider.OPENROUTER: ("cloud", "openrouter"),
    Provider.ANTHROPIC: ("cloud", "anthropic"),
    Provider.OLLAMA: ("local", "ollama"),
}
#: Other libraries' names for an option forge has under one name of its own: refused, naming
#: forge's (one way to set each thing). ``num_predict`` is Ollama's name for ``max_tokens``,
#: which forge sends to Ollama as ``num_predict`` and to every other provider as its limit;
#: Anthropic's ``thinking`` and Ollama's ``think`` are forge's reasoning fields.
RENAMED_OPTIONS: dict[str, str] = {
    "num_predict": "'max_tokens'",
    "thinking": "reasoning_budget=<tokens> (Anthropic's thinking budget_tokens) or reasoning=True",
    "think": "reasoning=True (Ollama's think) or reasoning_effort",
    "reasoning_format": "reasoning=True; the thinking comes back apart as reasoning",
}

#: Of those, the ones that embed over HTTP.
_EMBEDDING_ENDPOINTS = frozenset({Provider.OPENAI, Provider.OLLAMA})


class ForgeOptions(BaseModel):
    """Which forge configuration to load, the routing settings that override it, and the
    endpoint ``base_url`` / ``api_key`` configure.

    Each option left None keeps the configured value; the set ones become ``Forge``
    overrides (`forge_core.routing_overrides`), so a wrapper routes exactly as a `Forge`
    built with them would. Every wrapper built with the same options shares one `Forge`
    (`forge_core.shared_forge`).
    """

    #: Whether the wrapper embeds (``base_url`` / ``api_key`` then configure a provider that
    #: embeds over HTTP: ``openai`` or ``ollama``).
    embeds: ClassVar[bool] = False

    _forge_source: ForgeSource = PrivateAttr(default_factory=ForgeSource)

    config: ForgeConfig | str | None = Field(
        default_factory=lambda: os.environ.get("FORGE_CONFIG") or None,
        description=(
            "A forge_core.ForgeConfig or the path of a forge.yaml; defaults to $FORGE_CONFIG. "
            "None uses ./forge.yaml, the user config dir, then forge's defaults."
        ),
    )
    fallback_order: list[str] | None = Field(
        default=None,
        description=(
            "Providers or deployments (kinds, names, name:model) to try, in order "
            "(providers.fallback.order); None keeps the config's."
        ),
    )
    local_first: bool | None = Field(
        default=None,
        description="Try local providers before cloud ones (model_preferences.local_first).",
    )
    local_only: bool | None = Field(
        default=None,
        description="Never send anything to a cloud provider (model_preferences.local_only).",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Deadline in seconds for a whole request, fallbacks included "
            "(routing.total_timeout_seconds); None keeps the config's."
        ),
    )
    max_retries: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Retries of one candidate after a retryable error (routing.max_retries); None "
            "keeps the config's. Fallback to the next candidate happens either way."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "API key of the provider the model pins (openai:, openrouter:, anthropic:); with "
            "no provider in the model, of openai. None: the env var the config names "
            "(api_key_env). Never shown in a repr, an error or a log."
        ),
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the provider the model pins (ollama:, openai: ...); with no provider "
            "in the model, of openai (any OpenAI-compatible server). None keeps the config's."
        ),
    )

    backends: dict[str, Any] | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description=(
            "Backends to route over instead of the clients the config builds, by deployment "
            "name (forge_core.testing.ScriptedBackend in tests); None builds them from config."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_options(cls, data: Any) -> Any:
        """An option this class does not have is refused, naming the closest one it has:
        ``ForgeChat(temprature=0.2)`` fails rather than being dropped (or moved into a
        pass-through) without a word. Raw provider fields go in ``extra_body`` on purpose."""
        if not isinstance(data, dict):
            return data
        known = _known_names(cls)
        unknown = [key for key in data if isinstance(key, str) and key not in known]
        if unknown:
            raise ValueError(unknown_options(cls.__name__, unknown, known, what="option"))
        return data

    @field_validator("config", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        """Any ``os.PathLike`` config path is kept as its string."""
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _check_endpoint_target(self) -> Any:
        """``api_key`` / ``base_url`` must configure something the targeted provider uses."""
        if self.api_key is None and self.base_url is None:
            return self
        owner = type(self).__name__
        provider = self.endpoint_provider()
        if self.embeds and provider not in _EMBEDDING_ENDPOINTS:
            raise ValueError(
                f"{owner}: api_key and base_url configure openai or ollama; the pinned "
                f"provider '{provider.value}' takes neither"
            )
        if provider not in ENDPOINT_SECTIONS:
            raise ValueError(
                f"{owner}: api_key and base_url configure an HTTP provider; "
                f"'{provider.value}' runs models in process and takes neither"
            )
        if self.api_key is not None and provider is Provider.OLLAMA:
            raise ValueError(
                f"{owner}: api_key configures a cloud provider (openai, openrouter, "
                "anthropic); the pinned provider 'ollama' sends no key (no api_key)"
            )
        return self

    def _pinned_model(self) -> str | None:
        model = getattr(self, "model", None)
        return model if isinstance(model, str) and model else None

    def endpoint_provider(self) -> Provider:
        """The provider ``api_key`` and ``base_url`` configure: the model's, else ``openai``."""
        model = self._pinned_model()
        pinned = ModelId.parse(model).provider if model else None
        return pinned or Provider.OPENAI

    def forge_overrides(self) -> dict[str, Any]:
        """The ``Forge(overrides=...)`` mapping (forge.yaml's shape) from the options set."""
        overrides = routing_overrides(
            fallback_order=self.fallback_order,
            local_first=self.local_first,
            local_only=self.local_only,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )
        endpoint: dict[str, Any] = {}
        if self.base_url is not None:
            endpoint["base_url"] = self.base_url
        if self.api_key is not None:
            endpoint["api_key_env"] = API_KEY_ENV
        if endpoint:
            group, name = ENDPOINT_SECTIONS[self.endpoint_provider()]
            providers: dict[str, Any] = overrides.setdefault("providers", {})
            providers.setdefault(group, {})[name] = endpoint
        return overrides

    def api_key_layer(self) -> dict[str, str] | None:
        """The private env layer that carries ``api_key`` to forge's clients (the endpoint's
        ``api_key_env`` points at it), or None without a key."""
        key = self.api_key
        return {API_KEY_ENV: key.get_secret_value()} if key is not None else None

    def forge_source(self) -> ForgeSource:
        """This wrapper's handle on its shared `Forge`, read from pydantic's private store
        (the attribute itself is found by pydantic's ``__getattr__`` after a failed lookup,
        ~1.5 µs, on every call)."""
        private = self.__pydantic_private__
        source = private.get("_forge_source") if private else None
        return source if isinstance(source, ForgeSource) else self._forge_source

    def shared_forge(self) -> Forge:
        """The `Forge` for ``config`` and these options (`forge_core.shared_forge`), shared by
        every wrapper built with the same ones; a call costs a comparison. A bad ``config``
        raises `forge_core.ConfigError` here."""
        # The key reaches only forge's clients (a private env layer), never os.environ, so
        # subprocesses and other models do not inherit it.
        return self.forge_source().get(
            self.config,
            overrides=self.forge_overrides(),
            api_keys=self.api_key_layer(),
            backends=self.backends,
        )

    def config_identity(self) -> Any:
        """What identifies ``config`` for caching (`forge_core.ForgeSource.config_identity`)."""
        return self.forge_source().config_identity(self.config)


def _known_names(cls: type[BaseModel]) -> frozenset[str]:
    """Every field name and alias ``cls`` accepts at construction."""
    names = set(cls.model_fields)
    for field in cls.model_fields.values():
        for alias in (field.alias, field.validation_alias):
            if isinstance(alias, str):
                names.add(alias)
    return frozenset(names)


#: Other chat models' names for what a forge option does, and what to use instead: the
#: refusal of one names the forge option rather than a lookalike.
def unknown_options(
    owner: str, unknown: Iterable[str], valid: Collection[str], *, what: str
) -> str:
    """The message refusing ``unknown`` names: each with forge's name for it when it is
    another library's (`RENAMED_OPTIONS`), else the closest valid name
    (`difflib.get_close_matches`) when one is close; then the valid public names."""
    parts = []
    for name in sorted(unknown):
        renamed = RENAMED_OPTIONS.get(name)
        if renamed is not None:
            parts.append(f"{name!r} (forge calls it {renamed})")
            continue
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    public = ", ".join(sorted(name for name in valid if not name.startswith("_")))
    return (
        f"{owner}: unknown {what}(s) {', '.join(parts)}; forge refuses unknown options rather "
        f"than ignore them (raw provider fields go in extra_body). Valid: {public}"
    )


class ChatOptions(ForgeOptions):
    """`ForgeOptions` plus the generation parameters a chat wrapper may set once for every
    call (`forge_core.SAMPLING_PARAMETERS`, the reasoning fields and ``extra_body``); each None is "not set", and a
    per-call value of the same name wins. Providers that lack one leave it out
    (docs/providers.md)."""

    top_p: float | None = Field(default=None, description="Nucleus sampling probability mass.")
    top_k: int | None = Field(default=None, description="Sample among the k likeliest tokens.")
    seed: int | None = Field(default=None, description="Seed for reproducible sampling.")
    frequency_penalty: float | None = Field(
        default=None, description="Penalty on tokens by how often they appeared so far."
    )
    presence_penalty: float | None = Field(
        default=None, description="Penalty on tokens that appeared at all so far."
    )
    logit_bias: dict[int | str, float] | None = Field(
        default=None, description="Token id (an int or its string) -> bias added to its logit."
    )
    logprobs: bool | None = Field(default=None, description="Ask for token log probabilities.")
    top_logprobs: int | None = Field(
        default=None, description="How many alternatives' log probabilities per token."
    )
    parallel_tool_calls: bool | None = Field(
        default=None, description="Whether the model may call several tools in one answer."
    )
    user: str | None = Field(default=None, description="An end-user id for the provider.")
    service_tier: str | None = Field(
        default=None, description="The provider's service tier (OpenAI: auto, flex ...)."
    )
    repeat_penalty: float | None = Field(
        default=None,
        description="Penalty multiplying down tokens already in the context (Ollama, "
        "llama.cpp, in-process GGUF; vLLM and OpenRouter as repetition_penalty).",
    )
    num_ctx: int | None = Field(
        default=None,
        gt=0,
        description="The context Ollama loads the model with (Ollama only); wins over the "
        "size forge picks to fit the prompt.",
    )
    keep_alive: str | int | None = Field(
        default=None,
        description="How long Ollama keeps the model loaded after a call ('10m', seconds, "
        "-1 forever, 0 unload; Ollama only); wins over the config's keep_alive.",
    )
    extra_body: dict[str, Any] | None = Field(
        default=None,
        description="Raw fields merged last into the provider's request body, as they are.",
    )
    reasoning: bool | None = Field(
        default=None,
        description="True asks for thinking (returned apart from the answer; only "
        "reasoning-capable candidates serve); False asks the model not to think.",
    )
    reasoning_effort: ReasoningEffort | None = Field(
        default=None, description="How hard to think: low, medium or high (implies reasoning)."
    )
    reasoning_budget: int | None = Field(
        default=None, ge=1, description="At most this many thinking tokens (implies reasoning)."
    )

    def chat_options(self) -> dict[str, Any]:
        """The generation parameters set on this wrapper (not None), for `ChatRequest`; empty,
        and built from nothing, when none was set."""
        fields_set = self.__pydantic_fields_set__
        if _CHAT_OPTIONS.isdisjoint(fields_set):
            return {}
        values = {name: getattr(self, name) for name in sorted(_CHAT_OPTIONS & fields_set)}
        return {name: value for name, value in values.items() if value is not None}


_CHAT_OPTIONS: frozenset[str] = SAMPLING_PARAMETERS | REASONING_FIELDS | {"extra_body"}
