"""Planning: which candidates a request may use, in which order, known without a network call.

Chat and embedding requests are planned by the same rules: the configured order (default
provider first, local before cloud with ``local_first``), a pinned ``provider:model`` or bare
model name first, ``fallback.enabled``, ``local_only``, the capabilities the request needs,
and every endpoint's circuit and cached health. Each candidate left out is a `Drop` with its
reason, so a route always says why a provider was not tried. Within one order entry, the
deployments that serve the same model are balanced (``routing.balance``, `Planner._balanced`):
where the model is loaded first, then the least busy, then the fastest lately.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from forge_core._breaker import BreakerRegistry, CircuitBreaker, CircuitState
from forge_core._config import DeploymentSpec, ForgeConfig
from forge_core._exceptions import ProviderError
from forge_core._health import HealthCache, HealthStatus, endpoint_of
from forge_core._load import DeploymentLoad, Fetch, ResidentModels, in_listing
from forge_core._retry import Clock
from forge_core._types import (
    ChatRequest,
    Drop,
    EmbeddingRequest,
    ModelRequirements,
    Provider,
)
from forge_core.providers import ChatBackend, OllamaAdmin, ollama_admin
from forge_core.providers._base import DEFAULT_HEALTH_TIMEOUT, EmbeddingBackend, ModelOrdering

if TYPE_CHECKING:
    from forge_core._router import Router

__all__ = ["Candidate", "Planner", "ProviderSelector", "circuit_reason"]

_EMBEDDING_NEEDS = ModelRequirements(embeddings=True)


@dataclass(frozen=True)
class Candidate:
    """One deployment and model the router may call, with its endpoint's circuit breaker."""

    provider: Provider
    model: str
    backend: ChatBackend
    #: The backend's endpoint (`endpoint_of`): the key of its breaker and health entry.
    endpoint: str
    breaker: CircuitBreaker
    #: The deployment's name (`DeploymentSpec.name`; the kind's own for a default one).
    deployment: str
    #: Whether the deployment counts as local (`DeploymentSpec.local`).
    local: bool
    #: Whether the model is loaded at the endpoint (Ollama's ``/api/ps``, cached briefly):
    #: False when the endpoint said it is not (a request there waits for it to load), None
    #: when unknown (not an Ollama host, or the listing failed or was not asked).
    loaded: bool | None = None

    @property
    def key(self) -> str:
        """``deployment:model``, the metrics key (``provider:model`` for a default one)."""
        return f"{self.deployment}:{self.model}"


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
        backends: Mapping[str, ChatBackend],
        breakers: BreakerRegistry,
        health: HealthCache,
        clock: Clock,
        *,
        load: DeploymentLoad | None = None,
        resident: ResidentModels | None = None,
    ) -> None:
        self._config = config
        self._backends = backends
        self._deployments = config.providers.deployments
        self._breakers = breakers
        self._health = health
        self._clock = clock
        self._load = load or DeploymentLoad()
        self._resident = resident or ResidentModels(clock=clock)
        self._warm_first = config.routing.balance == "warm-first"
        #: Whose turn it is among equally good hosts (`_balanced`).
        self._turns = itertools.count()
        #: What only the config decides, worked out once: each order's groups, each
        #: deployment's preferred models.
        self._resolved: dict[tuple[str, ...], list[list[tuple[str, str | None]]]] = {}
        self._preferred = {
            name: tuple(getattr(spec.section, "preferred_models", None) or ())
            for name, spec in self._deployments.items()
        }
        #: (endpoint, model) -> when that endpoint last said it does not have the model.
        self._missing: dict[tuple[str, str], float] = {}
        #: How to list the loaded models of each deployment that can say (Ollama hosts), when
        #: balancing or a load allowance needs to know.
        self._listers: dict[str, Fetch] = {}
        for name, backend in backends.items():
            admin = ollama_admin(backend)
            spec = self._deployments[name]
            if admin is not None and (self._warm_first or spec.load_timeout_seconds > 0):
                self._listers[name] = functools.partial(_loaded_names, admin)

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
        preference_order: Sequence[str] | None = None,
        fallback_enabled: bool | None = None,
    ) -> tuple[list[Candidate], list[Drop]]:
        """The candidates to try, in order, and the ones dropped before any network call.

        An embedding request needs a backend that embeds and defaults each candidate to its
        embedding model. ``needs`` defaults to what ``request`` needs; ``preference_order``
        (kinds, deployment names, ``name:model`` ids) and ``fallback_enabled`` default to the
        config's (`ProviderSelector` passes its own).
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
            default = prefs.default_provider
            if default is not None:
                order = [default] + [entry for entry in order if entry != default]
        groups = self._groups(order)
        if preference_order is None and prefs.local_first:
            groups = [
                part
                for local in (True, False)
                for group in groups
                if (part := [item for item in group if self._is_local(item[0]) is local])
            ]
        if pinned is not None:
            taken = {name for name, _ in pinned}
            groups = [pinned] + [
                rest for group in groups if (rest := [i for i in group if i[0] not in taken])
            ]
        if not (fallback.enabled if fallback_enabled is None else fallback_enabled):
            groups = groups[:1]

        local_only = prefs.local_only if request.local_only is None else request.local_only
        if needs is None:
            needs = (
                _EMBEDDING_NEEDS
                if isinstance(request, EmbeddingRequest)
                else ModelRequirements.of(request)
            )
        candidates: list[Candidate] = []
        drops: list[Drop] = []
        seen: set[tuple[str, str | None]] = set()
        for group in groups:
            group = [item for item in group if item not in seen]
            seen.update(group)
            self._plan_group(group, request, needs, local_only, candidates, drops)
        return candidates, drops

    def _groups(self, order: Sequence[str]) -> list[list[tuple[str, str | None]]]:
        """Each order entry as the deployments (and model) it means (`ProvidersConfig.resolve`;
        the config and `ProviderSelector` refuse entries that mean none)."""
        key = tuple(order)
        groups = self._resolved.get(key)
        if groups is None:
            providers = self._config.providers
            groups = [resolved for entry in order if (resolved := providers.resolve(entry))]
            # The config is fixed: an order resolves the same way every time.
            self._resolved[key] = groups
        return groups

    def _is_local(self, name: str) -> bool:
        spec = self._deployments.get(name)
        return spec.local if spec is not None else False

    def _plan_group(
        self,
        group: list[tuple[str, str | None]],
        request: ChatRequest | EmbeddingRequest,
        needs: ModelRequirements,
        local_only: bool,
        candidates: list[Candidate],
        drops: list[Drop],
    ) -> None:
        """The candidates of one order entry: its deployments' models, model by model (the
        first model on each deployment that has it, then the next model), so a preferred
        model found on any host wins over a less preferred one."""
        listed: list[tuple[DeploymentSpec, ChatBackend, str, CircuitBreaker, list[str]]] = []
        for name, model in group:
            spec = self._deployments[name]
            backend = self._backends.get(name)
            if backend is None:
                drops.append(
                    Drop(
                        provider=spec.kind,
                        model=model,
                        deployment=name,
                        reason="no client for this deployment in this forge version",
                    )
                )
                continue
            if needs.embeddings and not isinstance(backend, EmbeddingBackend):
                drops.append(
                    Drop(
                        provider=spec.kind,
                        model=model,
                        deployment=name,
                        reason=f"{name} has no embeddings API",
                    )
                )
                continue
            endpoint = endpoint_of(backend)
            breaker = self._breakers.get(endpoint)
            models = self._models(backend, spec.kind, model, request)
            listed.append((spec, backend, endpoint, breaker, models))
        if len(listed) == 1:
            ordered = [(listed[0], model) for model in listed[0][4]]
        else:
            # A model's place: in the preferred_models order where its deployment has one
            # (Ollama hosts share theirs), then where it first appears in the group.
            rank: dict[str, tuple[int, int]] = {}
            for entry in listed:
                preferred = self._preferred[entry[0].name]
                for model in entry[4]:
                    place = preferred.index(model) if model in preferred else len(preferred)
                    first = rank.get(model, (place, len(rank)))
                    rank[model] = (min(first[0], place), first[1])
            ordered = sorted(
                ((entry, model) for entry in listed for model in entry[4]),
                key=lambda pair: rank[pair[1]],
            )
        usable: list[tuple[DeploymentSpec, ChatBackend, str, CircuitBreaker, str]] = []
        for (spec, backend, endpoint, breaker, _), name in ordered:
            age = self._missing_since(endpoint, name)
            reason: str | None
            if age is not None:
                reason = f"model not found at {endpoint} ({age:.0f}s ago)"
            else:
                reason = self._unusable(backend, spec, name, needs, local_only, endpoint, breaker)
            if reason is not None:
                drops.append(
                    Drop(provider=spec.kind, model=name, deployment=spec.name, reason=reason)
                )
                continue
            usable.append((spec, backend, endpoint, breaker, name))
        listers = self._listers
        wanted = {entry[2]: lister for entry in usable if (lister := listers.get(entry[0].name))}
        resident = self._resident.names(wanted) if wanted else {}
        planned = []
        for spec, backend, endpoint, breaker, name in usable:
            names = resident.get(endpoint)
            planned.append(
                Candidate(
                    spec.kind,
                    name,
                    backend,
                    endpoint,
                    breaker,
                    deployment=spec.name,
                    local=spec.local,
                    loaded=None if names is None else in_listing(name, names),
                )
            )
        if self._warm_first and len(listed) > 1:
            planned = self._balanced(planned)
        candidates.extend(planned)

    def _balanced(self, planned: list[Candidate]) -> list[Candidate]:
        """``planned`` with the deployments of each model in balance order: the model loaded
        there first, then the fewest attempts in flight, then the lowest recent latency band
        (within 25%: equally fast; one not measured yet first, so it gets measured); equals
        take turns."""
        load = self._load
        turn = next(self._turns)

        def rank(candidate: Candidate) -> tuple[bool, int, float]:
            endpoint = candidate.endpoint
            latency = load.latency(endpoint, candidate.model)
            return (
                candidate.loaded is not True,
                load.in_flight(endpoint),
                -math.inf if latency is None else _latency_band(latency),
            )

        balanced: list[Candidate] = []
        for _, same_model in itertools.groupby(planned, key=lambda c: c.model):
            ranked = sorted(((rank(c), c) for c in same_model), key=lambda pair: pair[0])
            for _, tied in itertools.groupby(ranked, key=lambda pair: pair[0]):
                # Equals take turns: requests planned in the same instant (a burst, before any
                # is in flight) spread over the hosts instead of all choosing the first.
                hosts = [candidate for _, candidate in tied]
                start = turn % len(hosts)
                balanced.extend(hosts[start:] + hosts[:start])
        return balanced

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
        spec: DeploymentSpec,
        model: str,
        needs: ModelRequirements,
        local_only: bool,
        endpoint: str,
        breaker: CircuitBreaker,
    ) -> str | None:
        """Why ``backend`` cannot serve ``model`` now, known without a network call."""
        if local_only and not spec.local:
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

    def _pinned(self, text: str | None) -> list[tuple[str, str | None]] | None:
        """The deployments and model a request names, if it names any: ``name:model`` or
        ``kind:model`` (`ProvidersConfig.resolve`), a bare kind or name, or a bare model
        listed under a local provider (else meant for the default provider)."""
        if not text:
            return None
        providers = self._config.providers
        resolved = providers.resolve(text)
        if resolved is not None:
            return resolved
        bare = text
        local = providers.local
        if bare in local.ollama.preferred_models:
            return [(name, bare) for name in providers.named(Provider.OLLAMA.value) or []]
        if any(model.name == bare for model in local.huggingface.models):
            return [(Provider.HUGGINGFACE.value, bare)]
        order = providers.fallback.order
        first = self._config.model_preferences.default_provider or (order[0] if order else None)
        target = providers.resolve(first) if first is not None else None
        return [(name, bare) for name, _ in target] if target else None


#: Latencies within this factor of each other are one band: equally fast for balancing.
_LATENCY_BAND = 1.25


def _latency_band(seconds: float) -> int:
    """``seconds``' band on a geometric scale (`_LATENCY_BAND`); a lower band is faster."""
    return math.floor(math.log(max(seconds, 1e-6)) / math.log(_LATENCY_BAND))


def _loaded_names(admin: OllamaAdmin) -> list[str]:
    """The models ``admin``'s server has loaded now, within its health-check timeout."""
    return [model.name for model in admin.running_models(admin.health_check_timeout)]


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
            [str(p) for p in preference_order] if preference_order is not None else None
        )
        for entry in self.preference_order or []:
            if router.config.providers.resolve(entry) is None:
                raise ValueError(router.config.providers.unknown(entry))
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

    def check_health(self) -> dict[str, HealthStatus]:
        """Health of each preferred deployment's endpoint (cached, else a cheap probe), by
        deployment name (a kind in the preference order means each of its deployments)."""
        backends = self._router.backends
        providers = self._router.config.providers
        names: list[str] = []
        for entry in self.preference_order or list(backends):
            for name, _ in providers.resolve(entry) or []:
                if name in backends and name not in names:
                    names.append(name)
        return {
            name: self._router.health.check(
                endpoint_of(backends[name]), backends[name], self.health_check_timeout
            )
            for name in names
        }
