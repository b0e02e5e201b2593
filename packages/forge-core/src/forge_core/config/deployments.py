"""Kinds, names and hosts resolved into deployments.

`ProvidersConfig` (``providers``) turns its sections into one `DeploymentSpec` per deployment:
the default one of each kind, one per Ollama host, one per named endpoint; it rejects names
that clash, and resolves what ``fallback.order`` (`FallbackConfig`), ``default_provider`` and a
request's model name: a kind, a deployment name, either with ``:model``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, field_validator, model_validator

from forge_core.config.sections import (
    AnthropicConfig,
    CloudProvidersConfig,
    EndpointConfig,
    HuggingFaceConfig,
    KeyPathError,
    LocalProvidersConfig,
    OllamaConfig,
    OpenAIConfig,
    OpenRouterConfig,
    Section,
)
from forge_core.types import Provider

__all__ = [
    "KIND_VALUES",
    "DeploymentSection",
    "DeploymentSpec",
    "FallbackConfig",
    "ProvidersConfig",
    "as_kind",
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


#: The provider kinds' names, as order entries and model prefixes spell them.
KIND_VALUES = frozenset(provider.value for provider in Provider)


def as_kind(text: str) -> str:
    """A provider kind as its `Provider` member (a string too); any other text unchanged."""
    try:
        return Provider(text.strip().lower())
    except ValueError:
        return text


def _on_private_network(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


class FallbackConfig(Section):
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
        order = [as_kind(entry) for entry in order]
        seen: set[str] = set()
        for entry in order:
            if entry in seen:
                raise ValueError(f"'{entry}' is listed twice")
            seen.add(entry)
        return order


class ProvidersConfig(Section):
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
                raise KeyPathError(
                    key_path, f"'{name}' is a provider kind; a deployment needs another name"
                )
            if name in seen:
                raise KeyPathError(key_path, f"'{name}' names two deployments")
            seen.add(name)
        self._deployments = deployments
        for index, entry in enumerate(self.fallback.order):
            if self.resolve(entry) is None:
                raise KeyPathError(("fallback", "order", index), self.unknown(entry))
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
        if text in self._deployments and text not in KIND_VALUES:
            return [text]
        lowered = text.strip().lower()
        if lowered not in KIND_VALUES:
            return None
        if with_model and lowered in self._deployments:
            return [lowered]
        return [name for name, spec in self._deployments.items() if spec.kind.value == lowered]
