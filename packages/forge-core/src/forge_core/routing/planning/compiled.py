"""What only the config decides about planning, worked out once per router.

`OrderCompiler` turns the order a request follows (``fallback.order`` or a selector's, the
default provider first, local before cloud with ``local_first``, a pinned ``provider:model``
or bare model first, ``fallback.enabled``) into `OrderEntry` objects: each entry's
deployments (`EntryDeployment`: backend, endpoint, breaker, models), the ones this forge
cannot call, and the (deployment, model) pairs in the order they are tried
(`CandidateOrder`, grouped by model as `ModelDeployments` for balancing). The planner keeps
them per kind of request; per request it only reads them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from forge_core._caches import put_bounded
from forge_core.backends.base import ChatBackend, EmbeddingBackend, ModelDescriber, ModelOrdering
from forge_core.config.deployments import DeploymentSpec
from forge_core.config.schema import ForgeConfig
from forge_core.routing.breaker import BreakerRegistry, CircuitBreaker
from forge_core.routing.health import endpoint_of
from forge_core.routing.load import Fetch
from forge_core.types import ChatRequest, EmbeddingRequest, Provider

__all__ = [
    "NO_BACKEND",
    "CandidateOrder",
    "EntryDeployment",
    "ModelDeployments",
    "OrderCompiler",
    "OrderEntry",
]

#: Why a deployment of the config is left out when the `Forge` was given other backends.
NO_BACKEND = "no backend for this deployment in this Forge"


@dataclass(frozen=True, slots=True)
class EntryDeployment:
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
    #: The backend, when its server describes models on request (`ModelDescriber`).
    describer: ModelDescriber | None = None

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
class ModelDeployments:
    """One model's deployments in an order entry, with what balancing reads of each."""

    model: str
    deployments: tuple[EntryDeployment, ...]
    endpoints: tuple[str, ...]
    #: endpoint -> how to list what it has loaded, for those that can say (`ResidentModels`).
    listers: dict[str, Fetch]
    #: endpoint -> its index in ``deployments`` (prefix affinity's lookups).
    positions: dict[str, int]

    @classmethod
    def of(cls, model: str, deployments: Sequence[EntryDeployment]) -> ModelDeployments:
        """``model`` on ``deployments``, in their order."""
        return cls(
            model,
            tuple(deployments),
            tuple(d.endpoint for d in deployments),
            {d.endpoint: d.lister for d in deployments if d.lister is not None},
            {d.endpoint: i for i, d in reversed(list(enumerate(deployments)))},
        )


@dataclass(frozen=True, slots=True)
class CandidateOrder:
    """An order entry's (deployment, model) pairs in the order they are tried
    (`_in_model_order`)."""

    pairs: tuple[tuple[EntryDeployment, str], ...]
    #: The same, as each model with its deployments (for balancing).
    by_model: tuple[ModelDeployments, ...]

    @classmethod
    def of(cls, pairs: tuple[tuple[EntryDeployment, str], ...]) -> CandidateOrder:
        """``pairs``, and the same grouped by model."""
        by_model = []
        for model, same_model in itertools.groupby(pairs, key=lambda pair: pair[1]):
            by_model.append(
                ModelDeployments.of(model, [deployment for deployment, _ in same_model])
            )
        return cls(pairs, tuple(by_model))


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """One entry of a request's order, resolved to its deployments (per router and request
    kind): the pinned deployments, or an entry of the configured or given order (with
    ``local_first``, its local deployments or its others)."""

    deployments: tuple[EntryDeployment, ...]
    #: The entry's deployments this forge cannot call: (kind, model, name, reason).
    unusable: tuple[tuple[Provider, str | None, str, str], ...]
    #: Warm-first over several deployments (`Balancer.steps`).
    balanced: bool
    #: The order when no model list can change (chat only).
    fixed_order: CandidateOrder | None
    #: Each deployment's models -> the order, for model lists that can change.
    orders_by_models: dict[tuple[tuple[str, ...], ...], CandidateOrder] = field(
        default_factory=dict
    )

    def candidate_order(self, request: ChatRequest | EmbeddingRequest) -> CandidateOrder:
        """The (deployment, model) pairs ``request`` tries here, in order (`_in_model_order`)."""
        if self.fixed_order is not None:
            return self.fixed_order
        deployments = self.deployments
        if isinstance(request, EmbeddingRequest):
            models = tuple(deployment.models(request) for deployment in deployments)
        else:
            models = tuple(deployment.chat_order() for deployment in deployments)
        orders = self.orders_by_models
        order = orders.get(models)
        if order is None:
            order = put_bounded(
                orders, models, CandidateOrder.of(_in_model_order(deployments, models))
            )
        return order


class OrderCompiler:
    """Works out, from the config alone, the order entries a kind of request plans.

    A kind of request: its pinned text, the order and ``fallback.enabled`` it follows, and
    whether it embeds. Each deployment gets its backend, endpoint, breaker and, when they
    never change, its models; the planner keeps the result (`Planner._plans`).
    """

    def __init__(
        self,
        config: ForgeConfig,
        backends: Mapping[str, ChatBackend],
        breakers: BreakerRegistry,
        listers: Mapping[str, Fetch],
        *,
        balanced: bool,
    ) -> None:
        self._config = config
        self._backends = backends
        self._deployments = config.providers.deployments
        self._breakers = breakers
        self._listers = listers
        self._balanced = balanced

    def entries(
        self,
        pinned_text: str | None,
        preference_order: Sequence[str] | None,
        fallback_enabled: bool | None,
        embedding: bool,
    ) -> list[OrderEntry]:
        """The entries a request plans, from the order (default provider first, local first),
        the pinned model and ``fallback.enabled``; each deployment in the first entry that
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
        entries = []
        for group in groups:
            group = [item for item in group if item not in seen]
            seen.update(group)
            entries.append(self._entry(group, embedding))
        return entries

    def _is_local(self, name: str) -> bool:
        spec = self._deployments.get(name)
        return spec.local if spec is not None else False

    def _entry(self, group: Sequence[tuple[str, str | None]], embedding: bool) -> OrderEntry:
        deployments: list[EntryDeployment] = []
        unusable: list[tuple[Provider, str | None, str, str]] = []
        for name, model in group:
            spec = self._deployments[name]
            backend = self._backends.get(name)
            if backend is None:
                unusable.append((spec.kind, model, name, NO_BACKEND))
                continue
            if embedding and not isinstance(backend, EmbeddingBackend):
                unusable.append((spec.kind, model, name, f"{name} has no embeddings API"))
                continue
            endpoint = endpoint_of(backend)
            ordering = not model and _orders_models(type(backend))
            deployments.append(
                EntryDeployment(
                    spec=spec,
                    backend=backend,
                    endpoint=endpoint,
                    breaker=self._breakers.get(endpoint),
                    model=model,
                    chat_models=None if ordering else (model or backend.default_model(),),
                    model_order=cast(ModelOrdering, backend).model_order if ordering else None,
                    lister=self._listers.get(name),
                    preferred=tuple(getattr(spec.section, "preferred_models", None) or ()),
                    describer=(
                        cast(ModelDescriber, backend) if _describes(type(backend)) else None
                    ),
                )
            )
        fixed = not embedding and all(d.chat_models is not None for d in deployments)
        return OrderEntry(
            deployments=tuple(deployments),
            unusable=tuple(unusable),
            balanced=self._balanced and len(deployments) > 1,
            fixed_order=(
                CandidateOrder.of(
                    _in_model_order(
                        deployments, [cast(tuple[str, ...], d.chat_models) for d in deployments]
                    )
                )
                if fixed
                else None
            ),
        )

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


@functools.cache
def _orders_models(backend_type: type) -> bool:
    # Per type, once: a runtime protocol check costs tens of microseconds on every plan.
    return issubclass(backend_type, ModelOrdering)


@functools.cache
def _describes(backend_type: type) -> bool:
    return issubclass(backend_type, ModelDescriber)


def _in_model_order(
    deployments: Sequence[EntryDeployment], models: Sequence[tuple[str, ...]]
) -> tuple[tuple[EntryDeployment, str], ...]:
    """Each deployment's models, model by model (the first model on each deployment that has
    it, then the next model), so a preferred model found on any deployment wins over a less
    preferred one. A model's place: in the ``preferred_models`` order where its deployment
    has one (Ollama hosts share theirs), then where it first appears in the entry."""
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
