"""Planning: which candidates a request may use, in which order, known without a network call.

Chat and embedding requests are planned by the same rules: the configured order (default
provider first, local before cloud with ``local_first``), a pinned ``provider:model`` or bare
model name first, ``fallback.enabled``, ``local_only``, the capabilities the request needs,
and every endpoint's circuit and cached health. Each candidate left out is a `Drop` with its
reason, so a route always says why a provider was not tried.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from forge_core._breaker import BreakerRegistry, CircuitBreaker, CircuitState
from forge_core._config import ForgeConfig
from forge_core._exceptions import ProviderError
from forge_core._health import HealthCache, HealthStatus, endpoint_of
from forge_core._retry import Clock
from forge_core._types import (
    ChatRequest,
    Drop,
    EmbeddingRequest,
    ModelId,
    ModelRequirements,
    Provider,
)
from forge_core.providers import ChatBackend
from forge_core.providers._base import DEFAULT_HEALTH_TIMEOUT, EmbeddingBackend, ModelOrdering

if TYPE_CHECKING:
    from forge_core._router import Router

__all__ = ["Candidate", "Planner", "ProviderSelector", "circuit_reason"]

_EMBEDDING_NEEDS = ModelRequirements(embeddings=True)


@dataclass(frozen=True)
class Candidate:
    """One provider and model the router may call, with its endpoint's circuit breaker."""

    provider: Provider
    model: str
    backend: ChatBackend
    #: The backend's endpoint (`endpoint_of`): the key of its breaker and health entry.
    endpoint: str
    breaker: CircuitBreaker

    @property
    def key(self) -> str:
        """``provider:model``, the metrics key."""
        return f"{self.provider.value}:{self.model}"


@functools.cache
def _orders_models(backend_type: type) -> bool:
    # Per type, once: a runtime protocol check costs tens of microseconds on every plan.
    return issubclass(backend_type, ModelOrdering)


def circuit_reason(breaker: CircuitBreaker) -> str:
    """Why ``breaker`` refuses a call now, as a drop reason."""
    if breaker.state is CircuitState.HALF_OPEN:
        return f"circuit half-open at {breaker.name}: a probe is already in flight"
    return f"circuit open at {breaker.name} (retry in {breaker.retry_in():.1f}s)"


class Planner:
    """Orders and filters the candidates for a request from config, circuits and health."""

    def __init__(
        self,
        config: ForgeConfig,
        backends: Mapping[Provider, ChatBackend],
        breakers: BreakerRegistry,
        health: HealthCache,
        clock: Clock,
    ) -> None:
        self._config = config
        self._backends = backends
        self._breakers = breakers
        self._health = health
        self._clock = clock
        #: (endpoint, model) -> when that endpoint last said it does not have the model.
        self._missing: dict[tuple[str, str], float] = {}

    def model_missing(self, candidate: Candidate) -> None:
        """Remember that ``candidate``'s endpoint answered "no such model" (a 404): for
        ``routing.health_ttl_seconds`` the planner drops that model there and tries the next
        one in the backend's order, with no call."""
        self._missing[(candidate.endpoint, candidate.model)] = self._clock.monotonic()

    def _missing_since(self, endpoint: str, model: str) -> float | None:
        """Seconds since ``endpoint`` said it lacks ``model``, if that is still trusted."""
        said = self._missing.get((endpoint, model))
        if said is None:
            return None
        age = self._clock.monotonic() - said
        if age > self._config.routing.health_ttl_seconds:
            del self._missing[(endpoint, model)]
            return None
        return age

    def plan(
        self,
        request: ChatRequest | EmbeddingRequest,
        *,
        needs: ModelRequirements | None = None,
        preference_order: Sequence[Provider] | None = None,
        fallback_enabled: bool | None = None,
    ) -> tuple[list[Candidate], list[Drop]]:
        """The candidates to try, in order, and the ones dropped before any network call.

        An embedding request needs a backend that embeds and defaults each candidate to its
        embedding model. ``needs`` defaults to what ``request`` needs; ``preference_order``
        and ``fallback_enabled`` default to the config's (`ProviderSelector` passes its own).
        """
        prefs = self._config.model_preferences
        fallback = self._config.providers.fallback
        if isinstance(request, EmbeddingRequest):
            pinned = self._pinned(request.model)
            fallback_enabled = request.fallback if fallback_enabled is None else fallback_enabled
        else:
            pinned = self._pinned(request.model or prefs.default_model)

        if preference_order is not None:
            order = list(preference_order)
        else:
            order = list(fallback.order)
            if prefs.default_provider is not None:
                order = [prefs.default_provider] + [p for p in order if p != prefs.default_provider]
            if prefs.local_first:
                order = [p for p in order if p.is_local] + [p for p in order if not p.is_local]
        wanted: list[tuple[Provider, str | None]] = [(p, None) for p in order]
        if pinned is not None:
            wanted = [pinned] + [(p, None) for p in order if p != pinned[0]]
        if not (fallback.enabled if fallback_enabled is None else fallback_enabled):
            wanted = wanted[:1]

        local_only = prefs.local_only if request.local_only is None else request.local_only
        if needs is None:
            needs = (
                _EMBEDDING_NEEDS
                if isinstance(request, EmbeddingRequest)
                else ModelRequirements.of(request)
            )
        candidates: list[Candidate] = []
        drops: list[Drop] = []
        for provider, model in wanted:
            backend = self._backends.get(provider)
            if backend is None:
                drops.append(
                    Drop(
                        provider=provider,
                        model=model,
                        reason="no client for this provider in this forge version",
                    )
                )
                continue
            if needs.embeddings and not isinstance(backend, EmbeddingBackend):
                drops.append(
                    Drop(provider=provider, model=model, reason=f"{provider} has no embeddings API")
                )
                continue
            endpoint = endpoint_of(backend)
            breaker = self._breakers.get(endpoint)
            for name in self._models(backend, provider, model, request):
                age = self._missing_since(endpoint, name)
                reason: str | None
                if age is not None:
                    reason = f"model not found at {endpoint} ({age:.0f}s ago)"
                else:
                    reason = self._unusable(
                        backend, provider, name, needs, local_only, endpoint, breaker
                    )
                if reason is not None:
                    drops.append(Drop(provider=provider, model=name, reason=reason))
                    continue
                candidates.append(Candidate(provider, name, backend, endpoint, breaker))
        return candidates, drops

    @staticmethod
    def _models(
        backend: ChatBackend,
        provider: Provider,
        model: str | None,
        request: ChatRequest | EmbeddingRequest,
    ) -> list[str]:
        """The models to try at ``backend``, in order: the one named, else the embedding model
        for an embedding request, else the backend's order (`ModelOrdering`) or its default."""
        if model:
            return [model]
        if isinstance(request, EmbeddingRequest) and isinstance(backend, EmbeddingBackend):
            return [request.models.get(provider) or backend.default_embedding_model()]
        if _orders_models(type(backend)):
            return cast(ModelOrdering, backend).model_order()
        return [backend.default_model()]

    def _unusable(
        self,
        backend: ChatBackend,
        provider: Provider,
        model: str,
        needs: ModelRequirements,
        local_only: bool,
        endpoint: str,
        breaker: CircuitBreaker,
    ) -> str | None:
        """Why ``backend`` cannot serve ``model`` now, known without a network call."""
        if local_only and not provider.is_local:
            return "local_only: cloud not allowed"
        unmet = needs.unmet(backend.capabilities(model))
        if unmet:
            return "lacks " + ", ".join(unmet)
        try:
            backend.check_ready(model)
        except ProviderError as exc:
            return str(exc)
        if breaker.rejects():
            return circuit_reason(breaker)
        cached = self._health.cached(endpoint)
        if cached is HealthStatus.DOWN:
            return "health check: down (cached)"
        return None

    def _pinned(self, text: str | None) -> tuple[Provider, str | None] | None:
        """The provider and model a request names, if it names one."""
        if not text:
            return None
        model_id = ModelId.parse(text)
        if model_id.provider is not None:
            return model_id.provider, model_id.model
        bare = model_id.model or ""
        local = self._config.providers.local
        if bare in local.ollama.preferred_models:
            return Provider.OLLAMA, bare
        if any(model.name == bare for model in local.huggingface.models):
            return Provider.HUGGINGFACE, bare
        prefs = self._config.model_preferences
        order = self._config.providers.fallback.order
        provider = prefs.default_provider or (order[0] if order else None)
        return (provider, bare) if provider is not None else None


class ProviderSelector:
    """``ProviderSelector``: which candidate serves given model requirements.

    A view over a `Router`'s planning (capabilities, ``local_only``, open circuits and cached
    health, all without a network call), with its own ``preference_order`` and
    ``fallback_enabled``. ``health_check_timeout`` bounds `check_health` probes.
    """

    def __init__(
        self,
        router: Router,
        preference_order: Sequence[Provider | str] | None = None,
        fallback_enabled: bool = True,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    ) -> None:
        self._router = router
        self.preference_order = (
            [Provider(p) for p in preference_order] if preference_order is not None else None
        )
        self.fallback_enabled = fallback_enabled
        self.health_check_timeout = health_check_timeout

    def candidates(
        self, model_requirements: ModelRequirements | None = None, *, local_only: bool | None = None
    ) -> tuple[list[Candidate], list[Drop]]:
        """Every usable candidate in order, and every dropped one with its reason."""
        return self._router.plan(
            ChatRequest(messages=[], local_only=local_only),
            needs=model_requirements or ModelRequirements(),
            preference_order=self.preference_order,
            fallback_enabled=self.fallback_enabled,
        )

    def select_provider(
        self, model_requirements: ModelRequirements | None = None, *, local_only: bool | None = None
    ) -> Candidate | None:
        """The first usable candidate, or None when every one is dropped."""
        usable, _ = self.candidates(model_requirements, local_only=local_only)
        return usable[0] if usable else None

    def check_health(self) -> dict[Provider, HealthStatus]:
        """Health of each preferred provider's endpoint (cached, else a cheap probe)."""
        backends = self._router.backends
        order = self.preference_order or list(backends)
        return {
            provider: self._router.health.check(
                endpoint_of(backends[provider]), backends[provider], self.health_check_timeout
            )
            for provider in order
            if provider in backends
        }
