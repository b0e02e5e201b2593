"""Planning: which candidates a request may use, in which order, known without a network call.

Chat and embedding requests are planned by the same rules: the configured order (default
provider first, local before cloud with ``local_first``), a pinned ``provider:model`` or bare
model name first, ``fallback.enabled``, ``local_only``, the capabilities the request needs,
and every endpoint's circuit and cached health. Each candidate left out is a `Drop` with its
reason, so a route always says why a provider was not tried. Within one order entry, the
deployments that serve the same model are balanced (``routing.balance``, `Planner._balanced_steps`):
where the model is loaded first, then the least busy, then the fastest lately.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast, overload

from forge_core._caches import remember
from forge_core.backends.base import (
    ChatBackend,
    EmbeddingBackend,
    ModelOrdering,
    ResidentModelsReport,
)
from forge_core.config.deployments import DeploymentSpec
from forge_core.config.schema import ForgeConfig
from forge_core.errors import ProviderError
from forge_core.routing.breaker import BreakerRegistry, CircuitBreaker, CircuitState
from forge_core.routing.health import HealthCache, HealthStatus, endpoint_of
from forge_core.routing.load import DeploymentLoad, Fetch, ResidentModels, in_listing, listed_as
from forge_core.routing.retry import Clock
from forge_core.types import (
    ChatRequest,
    Drop,
    EmbeddingRequest,
    ModelRequirements,
    Provider,
)

__all__ = ["Candidate", "Plan", "Planner", "circuit_reason"]

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


class Plan(Sequence[Candidate]):
    """A request's candidates in order, worked out only as far as they are asked for.

    The router tries the first candidate before it needs the next one, so a request that the
    first one answers pays for planning that one (and, for its retry policy, whether another
    follows), however many deployments the config has; a balanced order entry ranks all of
    its deployments first. Each candidate left out on the way is appended to ``drops`` when it
    is reached, and told to ``on_drop``. `len` and iterating to the end plan everything.
    """

    __slots__ = ("_found", "_steps", "drops", "on_drop")

    def __init__(self, steps: Iterable[Candidate | Drop], drops: list[Drop] | None = None) -> None:
        self._found: list[Candidate] = []
        self._steps: Iterator[Candidate | Drop] | None = iter(steps)
        self.drops: list[Drop] = [] if drops is None else drops
        self.on_drop: Callable[[Drop], None] | None = None

    def _next(self) -> bool:
        """Plan up to the next candidate; False when there is none."""
        steps = self._steps
        if steps is None:
            return False
        for step in steps:
            if isinstance(step, Candidate):
                self._found.append(step)
                return True
            self.drops.append(step)
            if self.on_drop is not None:
                self.on_drop(step)
        self._steps = None
        return False

    def _through(self, index: int) -> bool:
        """Plan until candidate ``index`` is known; whether there is one."""
        found = self._found
        while len(found) <= index:
            if not self._next():
                return False
        return True

    def first(self) -> Candidate | None:
        """The first candidate, None when there is none."""
        return self._found[0] if self._through(0) else None

    def has_after(self, index: int) -> bool:
        """Whether a candidate follows candidate ``index`` (plans at most one more)."""
        return self._through(index + 1)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Candidate]: ...

    def __getitem__(self, index: int | slice) -> Candidate | Sequence[Candidate]:
        if isinstance(index, slice) or index < 0:
            self._through(sys.maxsize)
        else:
            self._through(index)
        return self._found[index]

    def __len__(self) -> int:
        self._through(sys.maxsize)
        return len(self._found)

    def __iter__(self) -> Iterator[Candidate]:
        index = 0
        while self._through(index):
            yield self._found[index]
            index += 1

    def __bool__(self) -> bool:
        return self._through(0)

    def __repr__(self) -> str:
        more = "" if self._steps is None else ", ..."
        return f"Plan([{', '.join(c.key for c in self._found)}{more}])"


@dataclass(frozen=True, slots=True)
class _Deployment:
    """What only the config decides about one deployment of an order entry (per router)."""

    spec: DeploymentSpec
    backend: ChatBackend
    endpoint: str
    breaker: CircuitBreaker
    #: The model the order entry names, if any.
    model: str | None
    #: The models a chat request tries here when they never change (None: the backend's
    #: `ModelOrdering`, asked on every plan).
    chat_models: tuple[str, ...] | None
    #: The backend's `ModelOrdering.model_order` when ``chat_models`` is None.
    model_order: Callable[[], tuple[str, ...]] | None
    #: How to list the models loaded there (`Planner._listers`), if it can and must be asked.
    lister: Fetch | None
    #: The model rank's base: the deployment's ``preferred_models`` (Ollama's).
    preferred: tuple[str, ...]

    def models(self, request: ChatRequest | EmbeddingRequest) -> tuple[str, ...]:
        """The models to try here, in order: the one named, else the embedding model for an
        embedding request, else the backend's order (`ModelOrdering`) or its default."""
        if self.model:
            return (self.model,)
        backend = self.backend
        if isinstance(request, EmbeddingRequest) and isinstance(backend, EmbeddingBackend):
            return (request.models.get(self.spec.kind) or backend.default_embedding_model(),)
        return self.chat_order()

    def chat_order(self) -> tuple[str, ...]:
        """The models a chat request tries here, in order."""
        if self.chat_models is not None:
            return self.chat_models
        assert self.model_order is not None  # set whenever chat_models is not
        return self.model_order()


@dataclass(frozen=True, slots=True)
class _Group:
    """One order entry's deployments, as planning uses them (per router and request kind)."""

    deployments: tuple[_Deployment, ...]
    #: The entry's deployments this forge cannot call: (kind, model, name, reason).
    unusable: tuple[tuple[Provider, str | None, str, str], ...]
    #: Warm-first over several deployments (`Planner._balanced_steps`).
    balanced: bool
    #: The order when no model list can change (chat only).
    order: _Order | None
    #: Each deployment's models -> the order, for model lists that can change.
    orders: dict[tuple[tuple[str, ...], ...], _Order] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Order:
    """An order entry's (deployment, model) pairs in order (`_in_model_order`)."""

    pairs: tuple[tuple[_Deployment, str], ...]
    #: The same, as each model with its deployments (for balancing).
    runs: tuple[_Run, ...]

    @classmethod
    def of(cls, pairs: tuple[tuple[_Deployment, str], ...]) -> _Order:
        runs = []
        for model, same_model in itertools.groupby(pairs, key=lambda pair: pair[1]):
            runs.append(_Run.of(model, [deployment for deployment, _ in same_model]))
        return cls(pairs, tuple(runs))


@dataclass(frozen=True, slots=True)
class _Run:
    """One model's deployments in an order entry, with what balancing reads of each."""

    model: str
    deployments: tuple[_Deployment, ...]
    endpoints: tuple[str, ...]
    #: endpoint -> how to list what it has loaded, for those that can say (`ResidentModels`).
    listers: dict[str, Fetch]

    @classmethod
    def of(cls, model: str, deployments: Sequence[_Deployment]) -> _Run:
        return cls(
            model,
            tuple(deployments),
            tuple(d.endpoint for d in deployments),
            {d.endpoint: d.lister for d in deployments if d.lister is not None},
        )


class Planner:
    """Orders and filters the candidates for a request from config, circuits and health.

    What only the config decides (each order's entries, their deployments, endpoints,
    breakers and model orders) is worked out once per router; per request, a deployment
    costs its circuit, health, missing-model memory and, when balanced, load, and only when
    the router reaches it (`Plan`).
    """

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
        #: Whose turn it is among equally good hosts (`_balanced_steps`).
        self._turns = itertools.count()
        #: (pinned text, order, fallback, embedding) -> the groups a request plans, and those
        #: of their deployments asked what they have loaded (`_groups`).
        self._plans: dict[
            tuple[str | None, tuple[str, ...] | None, bool | None, bool],
            tuple[list[_Group], dict[str, _Deployment]],
        ] = {}
        #: (deployment, model, loaded) -> its candidate (candidates are immutable).
        self._candidates: dict[tuple[str, str, bool | None], Candidate] = {}
        #: (endpoint, model) -> when that endpoint last said it does not have the model.
        self._missing: dict[tuple[str, str], float] = {}
        #: How to list the loaded models of each deployment that can say (Ollama hosts), when
        #: balancing or a load allowance needs to know.
        self._listers: dict[str, Fetch] = {}
        for name, backend in backends.items():
            spec = self._deployments[name]
            if isinstance(backend, ResidentModelsReport) and (
                self._warm_first or spec.load_timeout_seconds > 0
            ):
                self._listers[name] = backend.loaded_models

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
            self._missing.pop((endpoint, model), None)
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
        planned = self.lazy(
            request,
            needs=needs,
            preference_order=preference_order,
            fallback_enabled=fallback_enabled,
        )
        return list(planned), planned.drops

    def lazy(
        self,
        request: ChatRequest | EmbeddingRequest,
        *,
        drops: list[Drop] | None = None,
        needs: ModelRequirements | None = None,
        preference_order: Sequence[str] | None = None,
        fallback_enabled: bool | None = None,
    ) -> Plan:
        """`plan` as a `Plan`, worked out as the router reaches each candidate; its drops are
        appended to ``drops`` (a route's trail) as they are found."""
        groups, _ = self._groups(request, preference_order, fallback_enabled)
        embedding = isinstance(request, EmbeddingRequest)
        local_only = (
            self._config.model_preferences.local_only
            if request.local_only is None
            else request.local_only
        )
        if needs is None:
            needs = (
                _EMBEDDING_NEEDS if embedding else ModelRequirements.of(cast(ChatRequest, request))
            )
        return Plan(self._steps(groups, request, needs, local_only), drops)

    async def aready(self, request: ChatRequest | EmbeddingRequest) -> None:
        """Before an async request plans: fetch, in a thread, the ``/api/ps`` listings that
        planning it would wait for (expired ones of hosts whose circuit and health allow
        calls), so the wait (at most `RESIDENT_WAIT_SECONDS`) never blocks the event loop."""
        _, listed = self._groups(request)
        if not listed or self._resident.trusted(listed):
            return
        wanted = {
            endpoint: cast(Fetch, deployment.lister)
            for endpoint, deployment in listed.items()
            if self._down(deployment) is None
        }
        if wanted and not self._resident.trusted(wanted):
            await asyncio.to_thread(self._resident.names, wanted)

    def _groups(
        self,
        request: ChatRequest | EmbeddingRequest,
        preference_order: Sequence[str] | None = None,
        fallback_enabled: bool | None = None,
    ) -> tuple[list[_Group], dict[str, _Deployment]]:
        """The groups ``request`` plans (`_groups_for`, cached), and those of their deployments
        that are asked what they have loaded, by endpoint."""
        embedding = isinstance(request, EmbeddingRequest)
        if isinstance(request, EmbeddingRequest):
            pinned = request.model
            if fallback_enabled is None:
                fallback_enabled = request.fallback
        else:
            pinned = request.model or self._config.model_preferences.default_model
        key = (
            pinned or None,
            None if preference_order is None else tuple(preference_order),
            fallback_enabled,
            embedding,
        )
        found = self._plans.get(key)
        if found is None:
            groups = self._groups_for(pinned, preference_order, fallback_enabled, embedding)
            listed = {
                d.endpoint: d for group in groups for d in group.deployments if d.lister is not None
            }
            found = remember(self._plans, key, (groups, listed))
        return found

    # -- what the config decides, once --------------------------------------------------------

    def _groups_for(
        self,
        pinned_text: str | None,
        preference_order: Sequence[str] | None,
        fallback_enabled: bool | None,
        embedding: bool,
    ) -> list[_Group]:
        """The groups a request plans, from the order (default provider first, local first),
        the pinned model and ``fallback.enabled``; each deployment in the first group that
        has it."""
        prefs = self._config.model_preferences
        providers = self._config.providers
        fallback = providers.fallback
        if preference_order is not None:
            order = list(preference_order)
        else:
            order = list(fallback.order)
            default = prefs.default_provider
            if default is not None:
                order = [default] + [entry for entry in order if entry != default]
        # Each order entry as the deployments (and model) it means (`ProvidersConfig.resolve`;
        # the config and `ProviderSelector` refuse entries that mean none).
        groups = [resolved for entry in order if (resolved := providers.resolve(entry))]
        if preference_order is None and prefs.local_first:
            groups = [
                part
                for local in (True, False)
                for group in groups
                if (part := [item for item in group if self._is_local(item[0]) is local])
            ]
        pinned = self._pinned(pinned_text)
        if pinned is not None:
            taken = {name for name, _ in pinned}
            groups = [pinned] + [
                rest for group in groups if (rest := [i for i in group if i[0] not in taken])
            ]
        if not (fallback.enabled if fallback_enabled is None else fallback_enabled):
            groups = groups[:1]
        seen: set[tuple[str, str | None]] = set()
        planned = []
        for group in groups:
            group = [item for item in group if item not in seen]
            seen.update(group)
            planned.append(self._group(group, embedding))
        return planned

    def _is_local(self, name: str) -> bool:
        spec = self._deployments.get(name)
        return spec.local if spec is not None else False

    def _group(self, group: Sequence[tuple[str, str | None]], embedding: bool) -> _Group:
        deployments: list[_Deployment] = []
        unusable: list[tuple[Provider, str | None, str, str]] = []
        for name, model in group:
            spec = self._deployments[name]
            backend = self._backends.get(name)
            if backend is None:
                reason = "no client for this deployment in this forge version"
                unusable.append((spec.kind, model, name, reason))
                continue
            if embedding and not isinstance(backend, EmbeddingBackend):
                unusable.append((spec.kind, model, name, f"{name} has no embeddings API"))
                continue
            endpoint = endpoint_of(backend)
            ordering = not model and _orders_models(type(backend))
            deployments.append(
                _Deployment(
                    spec=spec,
                    backend=backend,
                    endpoint=endpoint,
                    breaker=self._breakers.get(endpoint),
                    model=model,
                    chat_models=None if ordering else (model or backend.default_model(),),
                    model_order=cast(ModelOrdering, backend).model_order if ordering else None,
                    lister=self._listers.get(name),
                    preferred=tuple(getattr(spec.section, "preferred_models", None) or ()),
                )
            )
        fixed = not embedding and all(d.chat_models is not None for d in deployments)
        return _Group(
            deployments=tuple(deployments),
            unusable=tuple(unusable),
            balanced=self._warm_first and len(deployments) > 1,
            order=(
                _Order.of(
                    _in_model_order(
                        deployments, [cast(tuple[str, ...], d.chat_models) for d in deployments]
                    )
                )
                if fixed
                else None
            ),
        )

    # -- per request ----------------------------------------------------------------------------

    def _order(self, group: _Group, request: ChatRequest | EmbeddingRequest) -> _Order:
        """``group``'s (deployment, model) pairs in order (`_in_model_order`)."""
        if group.order is not None:
            return group.order
        deployments = group.deployments
        if isinstance(request, EmbeddingRequest):
            models = tuple(deployment.models(request) for deployment in deployments)
        else:
            models = tuple(deployment.chat_order() for deployment in deployments)
        orders = group.orders
        order = orders.get(models)
        if order is None:
            order = remember(orders, models, _Order.of(_in_model_order(deployments, models)))
        return order

    def _steps(
        self,
        groups: Sequence[_Group],
        request: ChatRequest | EmbeddingRequest,
        needs: ModelRequirements,
        local_only: bool,
    ) -> Iterator[Candidate | Drop]:
        """Every group's candidates and drops, in order (`Plan` pulls them one at a time)."""
        for group in groups:
            for kind, named, name, why in group.unusable:
                yield Drop(provider=kind, model=named, deployment=name, reason=why)
            order = self._order(group, request)
            if group.balanced:
                yield from self._balanced_steps(order, needs, local_only)
                continue
            for deployment, model in order.pairs:
                reason = self._unusable(deployment, model, needs, local_only)
                if reason is not None:
                    yield _drop(deployment, model, reason)
                    continue
                loaded: bool | None = None
                if deployment.lister is not None:
                    endpoint = deployment.endpoint
                    names = self._resident.names({endpoint: deployment.lister}).get(endpoint)
                    loaded = None if names is None else in_listing(model, names)
                yield self._candidate(deployment, model, loaded)

    def _balanced_steps(
        self, order: _Order, needs: ModelRequirements, local_only: bool
    ) -> Iterator[Candidate | Drop]:
        """The pairs with the deployments of each model in balance order: the model loaded
        there first, then the fewest attempts in flight, then the lowest recent latency band
        (within 25%: equally fast; one not measured yet first, so it gets measured); equals
        take turns. Every deployment of a model is ranked before the first is planned; one
        that lacks the model or whose circuit or cached health turns calls away is neither
        ranked nor asked what it has loaded."""
        turn = next(self._turns)
        for run in order.runs:
            model, deployments = run.model, run.deployments
            if (
                self._missing
                or (
                    not self._health.none_down()
                    and HealthStatus.DOWN in self._health.cached_all(run.endpoints)
                )
                or (
                    not self._breakers.all_closed()
                    and any(deployment.breaker.rejects() for deployment in deployments)
                )
            ):
                alive: list[_Deployment] = []
                for deployment in deployments:
                    reason = self._missing_reason(deployment, model)
                    if reason is None:
                        down = self._down(deployment)
                        if down is None:
                            alive.append(deployment)
                            continue
                        # The reason `_unusable` gives first, as for an unbalanced entry.
                        reason = self._unfit(deployment, model, needs, local_only) or down
                    yield _drop(deployment, model, reason)
                if not alive:
                    continue
                run = _Run.of(model, alive)
            # Each deployment's rank as one int, so that the sort compares ints: not loaded,
            # then its load (`DeploymentLoad.ranks`: in flight, then the latency band), then
            # its index in the run (the low 16 bits: a stable sort, and where to find it).
            loads = self._load.ranks(run.endpoints, model)
            loaded: Sequence[bool | None] | None = None
            if run.listers:
                loaded = self._loaded(run, model)
                ranked = sorted(
                    [
                        ((here is not True) << 56 | load << 16) | i
                        for i, (here, load) in enumerate(zip(loaded, loads, strict=True))
                    ]
                )
            else:  # none known to be loaded: the same first part for all
                ranked = sorted([load << 16 | i for i, load in enumerate(loads)])
            deployments = run.deployments
            start, count = 0, len(ranked)
            while start < count:
                # Equals take turns: requests planned in the same instant (a burst, before any
                # is in flight) spread over the hosts instead of all choosing the first.
                rank, end = ranked[start] >> 16, start + 1
                while end < count and ranked[end] >> 16 == rank:
                    end += 1
                tied = ranked[start:end]
                first = turn % len(tied)
                for entry in tied[first:] + tied[:first]:
                    index = entry & 0xFFFF
                    deployment = deployments[index]
                    reason = self._unfit(deployment, model, needs, local_only)
                    if reason is not None:
                        yield _drop(deployment, model, reason)
                    else:
                        here = None if loaded is None else loaded[index]
                        yield self._candidate(deployment, model, here)
                start = end

    def _loaded(self, run: _Run, model: str) -> Sequence[bool | None]:
        """Whether ``model`` is loaded at each of ``run``'s deployments (`in_listing`; None:
        unknown, or a deployment that cannot say)."""
        resident = self._resident.names(run.listers)
        aliases = listed_as(model)  # once a run, not once a deployment
        return [
            None if names is None else not names.isdisjoint(aliases)
            for names in map(resident.get, run.endpoints)
        ]

    def _candidate(self, deployment: _Deployment, model: str, loaded: bool | None) -> Candidate:
        key = (deployment.spec.name, model, loaded)
        candidate = self._candidates.get(key)
        if candidate is None:
            spec = deployment.spec
            candidate = Candidate(
                spec.kind,
                model,
                deployment.backend,
                deployment.endpoint,
                deployment.breaker,
                deployment=spec.name,
                local=spec.local,
                loaded=loaded,
            )
            remember(self._candidates, key, candidate)
        return candidate

    def _unusable(
        self, deployment: _Deployment, model: str, needs: ModelRequirements, local_only: bool
    ) -> str | None:
        """Why ``deployment`` cannot serve ``model`` now, known without a network call."""
        return (
            self._missing_reason(deployment, model)
            or self._unfit(deployment, model, needs, local_only)
            or self._down(deployment)
        )

    def _missing_reason(self, deployment: _Deployment, model: str) -> str | None:
        if not self._missing:
            return None
        age = self._missing_since(deployment.endpoint, model)
        if age is None:
            return None
        return f"model not found at {deployment.endpoint} ({age:.0f}s ago)"

    @staticmethod
    def _unfit(
        deployment: _Deployment, model: str, needs: ModelRequirements, local_only: bool
    ) -> str | None:
        """Why this request may not, or ``model`` cannot, go to ``deployment``."""
        if local_only and not deployment.spec.local:
            return "local_only: cloud not allowed"
        backend = deployment.backend
        unmet = needs.unmet(backend.capabilities(model))
        if unmet:
            return "lacks " + ", ".join(unmet)
        try:
            backend.check_ready(model)
        except ProviderError as exc:
            return str(exc)
        return None

    def _down(self, deployment: _Deployment) -> str | None:
        """Why ``deployment``'s endpoint turns calls away now: its circuit, its cached health."""
        breaker = deployment.breaker
        if breaker.rejects():
            return circuit_reason(breaker)
        if self._health.cached(deployment.endpoint) is HealthStatus.DOWN:
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


def _drop(deployment: _Deployment, model: str, reason: str) -> Drop:
    spec = deployment.spec
    return Drop(provider=spec.kind, model=model, deployment=spec.name, reason=reason)


def _in_model_order(
    deployments: Sequence[_Deployment], models: Sequence[tuple[str, ...]]
) -> tuple[tuple[_Deployment, str], ...]:
    """Each deployment's models, model by model (the first model on each deployment that has
    it, then the next model), so a preferred model found on any deployment wins over a less
    preferred one. A model's place: in the ``preferred_models`` order where its deployment
    has one (Ollama hosts share theirs), then where it first appears in the group."""
    if len(deployments) == 1:
        return tuple((deployments[0], model) for model in models[0])
    rank: dict[str, tuple[int, int]] = {}
    for deployment, names in zip(deployments, models, strict=True):
        preferred = deployment.preferred
        for model in names:
            place = preferred.index(model) if model in preferred else len(preferred)
            first = rank.get(model, (place, len(rank)))
            rank[model] = (min(first[0], place), first[1])
    return tuple(
        sorted(
            (
                (deployment, model)
                for deployment, names in zip(deployments, models, strict=True)
                for model in names
            ),
            key=lambda pair: rank[pair[1]],
        )
    )
