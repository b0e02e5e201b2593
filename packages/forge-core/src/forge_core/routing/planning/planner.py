"""The planner: which candidates a request may use, in which order, known without a network call.

Chat and embedding requests are planned by the same rules: the configured order (default
provider first, local before cloud with ``local_first``), a pinned ``provider:model`` or bare
model name first, ``fallback.enabled``, ``local_only``, the capabilities the request needs,
and every endpoint's circuit and cached health. Each candidate left out is a `Drop` with its
reason (`drops`), so a route always says why a provider was not tried. What only the config
decides is worked out once per router (`compiled`); within one order entry, the deployments
that serve the same model are balanced (``routing.balance``, `Balancer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import cast

from forge_core._caches import put_bounded
from forge_core.backends.base import ChatBackend, ModelDescriber, ResidentModelsReport
from forge_core.config.schema import ForgeConfig
from forge_core.routing.affinity import AffinityIndex, RequestAffinity
from forge_core.routing.breaker import BreakerRegistry
from forge_core.routing.health import HealthCache
from forge_core.routing.load import DeploymentLoad, Fetch, ResidentModels, in_listing
from forge_core.routing.planning.balancing import Balancer
from forge_core.routing.planning.candidates import Candidate, Plan
from forge_core.routing.planning.compiled import EntryDeployment, OrderCompiler, OrderEntry
from forge_core.routing.planning.drops import (
    MissingModels,
    as_drop,
    described_first,
    down_reason,
    unfit_reason,
)
from forge_core.routing.retry import Clock
from forge_core.types import (
    Capabilities,
    ChatRequest,
    Drop,
    EmbeddingRequest,
    ModelRequirements,
    Provider,
)

__all__ = ["Planner"]

_EMBEDDING_NEEDS = ModelRequirements(embeddings=True)


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
        affinity: AffinityIndex | None = None,
    ) -> None:
        self._config = config
        self._health = health
        self._resident = resident or ResidentModels(clock=clock)
        warm_first = config.routing.balance == "warm-first"
        #: (pinned text, order, fallback, embedding) -> the entries a request plans, and those
        #: of their deployments asked what they have loaded (`_entries`).
        self._plans: dict[
            tuple[str | None, tuple[str, ...] | None, bool | None, bool],
            tuple[list[OrderEntry], dict[str, EntryDeployment], bool],
        ] = {}
        #: (deployment, model, loaded) -> its candidate (candidates are immutable).
        self._candidates: dict[tuple[str, str, bool | None], Candidate] = {}
        #: The models endpoints said they do not have (404s), trusted for a while.
        self._missing = MissingModels(config, clock)
        #: How to list the loaded models of each deployment that can say (Ollama hosts), when
        #: balancing or a load allowance needs to know.
        self._listers: dict[str, Fetch] = {}
        deployments = config.providers.deployments
        for name, backend in backends.items():
            spec = deployments[name]
            if isinstance(backend, ResidentModelsReport) and (
                warm_first or spec.load_timeout_seconds > 0
            ):
                self._listers[name] = backend.loaded_models
        self._compiler = OrderCompiler(
            config, backends, breakers, self._listers, balanced=warm_first
        )
        self._balancer = Balancer(
            health=health,
            breakers=breakers,
            load=load or DeploymentLoad(),
            resident=self._resident,
            missing=self._missing,
            candidate=self._candidate,
            affinity=affinity,
        )

    def model_missing(self, candidate: Candidate) -> None:
        """Remember that ``candidate``'s endpoint answered "no such model" (a 404): for
        ``routing.health_ttl_seconds`` the planner drops that model there and tries the next
        one in the backend's order, with no call."""
        self._missing.note(candidate.endpoint, candidate.model)

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
        affinity: RequestAffinity | None = None,
    ) -> Plan:
        """`plan` as a `Plan`, worked out as the router reaches each candidate; its drops are
        appended to ``drops`` (a route's trail) as they are found. ``affinity``: the request's
        (`AffinityIndex.begin`), which balancing consults and notes its reasons in."""
        entries, _, _ = self._entries(request, preference_order, fallback_enabled)
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
        return Plan(self._steps(entries, request, needs, local_only, affinity), drops)

    def pinned(self, model: str) -> tuple[Provider, str, Capabilities] | None:
        """The provider kind and model ``model`` (``provider:model`` or a bare name) pins, and
        what that model can do on its first deployment (`ChatBackend.capabilities`: the
        capability table and what the backend has learned), whether or not the deployment is
        usable now; None when no configured deployment can serve it. No network call."""
        request = ChatRequest(messages=[], model=model)
        entries, _, _ = self._entries(request, fallback_enabled=False)
        for entry in entries:
            for deployment, chosen in entry.candidate_order(request).pairs:
                return deployment.spec.kind, chosen, deployment.backend.capabilities(chosen)
        return None

    async def aready(self, request: ChatRequest | EmbeddingRequest) -> ModelRequirements | None:
        """Before an async request plans, what planning it would wait for, without blocking
        the event loop: the descriptions of models a chat request needs them of
        (`ModelDescriber.adescribe`, all at once), and, in a thread, the ``/api/ps`` listings
        (expired ones of hosts whose circuit and health allow calls; at most
        `RESIDENT_WAIT_SECONDS`). Returns the request's needs when it worked them out, for
        `lazy` to take."""
        entries, listed, describing = self._entries(request)
        needs = None
        if describing and isinstance(request, ChatRequest):
            needs = ModelRequirements.of(request)
            unknown = self._to_describe(entries, request, needs)
            if unknown:
                await asyncio.gather(
                    *(describer.adescribe(model) for (_, model), describer in unknown.items())
                )
        if not listed or self._resident.trusted(listed):
            return needs
        wanted = {
            endpoint: cast(Fetch, deployment.lister)
            for endpoint, deployment in listed.items()
            if down_reason(deployment, self._health) is None
        }
        if wanted and not self._resident.trusted(wanted):
            await asyncio.to_thread(self._resident.names, wanted)
        return needs

    def _to_describe(
        self, entries: Sequence[OrderEntry], request: ChatRequest, needs: ModelRequirements
    ) -> dict[tuple[str, str], ModelDescriber]:
        """Each (endpoint, model) of ``entries`` whose server should describe the model before
        planning ``needs`` on it (`ModelDescriber.should_describe`): every one the request may
        reach, since an async plan cannot stop to ask one at a time; not those whose endpoint
        turns calls away or said it lacks the model. No network call."""
        local_only = (
            self._config.model_preferences.local_only
            if request.local_only is None
            else request.local_only
        )
        wanted: dict[tuple[str, str], ModelDescriber] = {}
        for entry in entries:
            for deployment, model in entry.candidate_order(request).pairs:
                describer = deployment.describer
                if (
                    describer is not None
                    and describer.should_describe(model, needs)
                    and (deployment.endpoint, model) not in wanted
                    and not (local_only and not deployment.spec.local)
                    and self._missing.reason(deployment.endpoint, model) is None
                    and down_reason(deployment, self._health) is None
                ):
                    wanted[deployment.endpoint, model] = describer
        return wanted

    def _entries(
        self,
        request: ChatRequest | EmbeddingRequest,
        preference_order: Sequence[str] | None = None,
        fallback_enabled: bool | None = None,
    ) -> tuple[list[OrderEntry], dict[str, EntryDeployment], bool]:
        """The entries ``request`` plans (`OrderCompiler.entries`, kept), those of their
        deployments that are asked what they have loaded, by endpoint, and whether any of
        them describes models on request (`ModelDescriber`)."""
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
            entries = self._compiler.entries(pinned, preference_order, fallback_enabled, embedding)
            listed = {
                d.endpoint: d
                for entry in entries
                for d in entry.deployments
                if d.lister is not None
            }
            describing = any(
                d.describer is not None for entry in entries for d in entry.deployments
            )
            found = put_bounded(self._plans, key, (entries, listed, describing))
        return found

    # -- per request ----------------------------------------------------------------------------

    def _steps(
        self,
        entries: Sequence[OrderEntry],
        request: ChatRequest | EmbeddingRequest,
        needs: ModelRequirements,
        local_only: bool,
        affinity: RequestAffinity | None = None,
    ) -> Iterator[Candidate | Drop]:
        """Every entry's candidates and drops, in order (`Plan` pulls them one at a time)."""
        for entry in entries:
            for kind, named, name, why in entry.unusable:
                yield Drop(provider=kind, model=named, deployment=name, reason=why)
            order = entry.candidate_order(request)
            if entry.balanced:
                yield from self._balancer.steps(order, needs, local_only, affinity)
                continue
            for deployment, model in order.pairs:
                reason = self._unusable(deployment, model, needs, local_only)
                if reason is not None:
                    yield as_drop(deployment, model, reason)
                    continue
                loaded: bool | None = None
                if deployment.lister is not None:
                    endpoint = deployment.endpoint
                    names = self._resident.names({endpoint: deployment.lister}).get(endpoint)
                    loaded = None if names is None else in_listing(model, names)
                yield self._candidate(deployment, model, loaded)

    def _candidate(self, deployment: EntryDeployment, model: str, loaded: bool | None) -> Candidate:
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
            put_bounded(self._candidates, key, candidate)
        return candidate

    def _unusable(
        self, deployment: EntryDeployment, model: str, needs: ModelRequirements, local_only: bool
    ) -> str | None:
        """Why ``deployment`` cannot serve ``model`` now, known without a network call (but
        the server's description of ``model`` when the request needs it: `described_first`)."""
        missing = self._missing.reason(deployment.endpoint, model)
        if missing is not None:
            return missing
        down = down_reason(deployment, self._health)
        if down is None:
            described_first(deployment, model, needs, local_only)
        return unfit_reason(deployment, model, needs, local_only) or down
