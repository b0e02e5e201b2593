"""Balancing: the order of the deployments that serve the same model in one order entry.

With ``routing.balance: warm-first`` and several deployments in an entry, `Balancer` ranks the
deployments of each model: where the model is loaded first (Ollama's ``/api/ps``, through
`ResidentModels`), then the fewest attempts in flight, then the lowest recent latency band
(`DeploymentLoad`); equals take turns. The model order of the entry (`CandidateOrder`) comes
first either way: balancing only reorders the hosts of one model. With ``routing.affinity``,
the deployment that holds the request's prompt (`AffinityIndex`) or its conversation key's
goes first among the warmest, unless it is loaded beyond ``routing.affinity_imbalance``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence

from forge_core.routing.affinity import (
    HIT,
    KEY,
    LOAD,
    LOAD_OVERRIDE,
    MISS,
    SPREAD,
    SPREAD_BANDS,
    AffinityIndex,
    RequestAffinity,
    prefix_reason,
    rendezvous,
)
from forge_core.routing.breaker import BreakerRegistry
from forge_core.routing.health import HealthCache, HealthStatus
from forge_core.routing.load import DeploymentLoad, ResidentModels, listed_as
from forge_core.routing.planning.candidates import Candidate
from forge_core.routing.planning.compiled import CandidateOrder, EntryDeployment, ModelDeployments
from forge_core.routing.planning.drops import (
    MissingModels,
    as_drop,
    described_first,
    down_reason,
    unfit_reason,
)
from forge_core.types import Drop, ModelRequirements

__all__ = ["Balancer"]

#: Builds (or reuses) the candidate for a deployment, a model and whether it is loaded there.
CandidateOf = Callable[[EntryDeployment, str, bool | None], Candidate]


class Balancer:
    """Ranks the deployments of each model of a balanced order entry, per request.

    Reads what is cheap to read for all of them: the breakers, cached health, the load, the
    ``/api/ps`` listings; fit checks run only for the deployments the router reaches.
    """

    def __init__(
        self,
        *,
        health: HealthCache,
        breakers: BreakerRegistry,
        load: DeploymentLoad,
        resident: ResidentModels,
        missing: MissingModels,
        candidate: CandidateOf,
        affinity: AffinityIndex | None = None,
    ) -> None:
        self._health = health
        self._breakers = breakers
        self._load = load
        self._resident = resident
        self._missing = missing
        self._candidate = candidate
        self._affinity = affinity
        #: Whose turn it is among equally good hosts (`steps`).
        self._turns = itertools.count()

    def steps(
        self,
        order: CandidateOrder,
        needs: ModelRequirements,
        local_only: bool,
        affinity: RequestAffinity | None = None,
    ) -> Iterator[Candidate | Drop]:
        """The pairs with the deployments of each model in balance order: the model loaded
        there first, then the fewest attempts in flight, then the lowest recent latency band
        (within 25%: equally fast; one not measured yet first, so it gets measured); equals
        take turns. Every deployment of a model is ranked before the first is planned; one
        that lacks the model or whose circuit or cached health turns calls away is neither
        ranked nor asked what it has loaded. With ``affinity`` (the request's), the deployment
        it names (`_affine`) goes first and every candidate gets its reason."""
        turn = next(self._turns)
        missing = self._missing
        for same_model in order.by_model:
            model, deployments = same_model.model, same_model.deployments
            if (
                missing.said
                or (
                    not self._health.none_down()
                    and HealthStatus.DOWN in self._health.cached_all(same_model.endpoints)
                )
                or (
                    not self._breakers.all_closed()
                    and any(deployment.breaker.rejects() for deployment in deployments)
                )
            ):
                alive: list[EntryDeployment] = []
                for deployment in deployments:
                    reason = missing.reason(deployment.endpoint, model)
                    if reason is None:
                        down = down_reason(deployment, self._health)
                        if down is None:
                            alive.append(deployment)
                            continue
                        # The reason `Planner._unusable` gives first, as for an unbalanced entry.
                        reason = unfit_reason(deployment, model, needs, local_only) or down
                    yield as_drop(deployment, model, reason)
                if not alive:
                    continue
                same_model = ModelDeployments.of(model, alive)
            # Each deployment's rank as one int, so that the sort compares ints: not loaded,
            # then its load (`DeploymentLoad.ranks`: in flight, then the latency band), then
            # its index among the model's deployments (the low 16 bits: a stable sort, and
            # where to find it).
            loads = self._load.ranks(same_model.endpoints, model)
            loaded: Sequence[bool | None] | None = None
            if same_model.listers:
                loaded = self._loaded(same_model, model)
                ranked = sorted(
                    [
                        ((here is not True) << 56 | load << 16) | i
                        for i, (here, load) in enumerate(zip(loaded, loads, strict=True))
                    ]
                )
            else:  # none known to be loaded: the same first part for all
                ranked = sorted([load << 16 | i for i, load in enumerate(loads)])
            deployments = same_model.deployments
            first = -1
            if affinity is not None:
                first = self._affine(affinity, same_model, loads, loaded, ranked, turn)
                if first >= 0:
                    yield self._step(deployments[first], model, needs, local_only, loaded, first)
            start, count = 0, len(ranked)
            while start < count:
                # Equals take turns: requests planned in the same instant (a burst, before any
                # is in flight) spread over the hosts instead of all choosing the first.
                rank, end = ranked[start] >> 16, start + 1
                while end < count and ranked[end] >> 16 == rank:
                    end += 1
                tied = ranked[start:end]
                at = turn % len(tied)
                for entry in tied[at:] + tied[:at]:
                    index = entry & 0xFFFF
                    if index != first:
                        yield self._step(
                            deployments[index], model, needs, local_only, loaded, index
                        )
                start = end

    def _step(
        self,
        deployment: EntryDeployment,
        model: str,
        needs: ModelRequirements,
        local_only: bool,
        loaded: Sequence[bool | None] | None,
        index: int,
    ) -> Candidate | Drop:
        described_first(deployment, model, needs, local_only)
        reason = unfit_reason(deployment, model, needs, local_only)
        if reason is not None:
            return as_drop(deployment, model, reason)
        return self._candidate(deployment, model, None if loaded is None else loaded[index])

    def _affine(
        self,
        affinity: RequestAffinity,
        same_model: ModelDeployments,
        loads: Sequence[int],
        loaded: Sequence[bool | None] | None,
        ranked: Sequence[int],
        turn: int,
    ) -> int:
        """The index of the deployment that affinity puts first among ``same_model``'s, or -1
        (load decides); notes why, and counts the request's outcome once.

        Only one of the warmest (the class of the best ranked) with at most
        ``routing.affinity_imbalance`` attempts in flight above the least loaded of them may
        be put first: a conversation key's deployment (`rendezvous` over all that are up),
        else the one that most recently served the longest prefix of the request; when the
        longest prefix's holder is passed over, a shorter prefix's may still win. A prompt
        no allowed deployment holds is a new conversation: it is spread (`_spread`)."""
        index = self._affinity
        model = same_model.model
        positions = same_model.positions
        if index is None or len(ranked) < 2 or (affinity.key is None and not affinity.use_prefix):
            affinity.chosen[model] = (None, LOAD, positions)
            return -1
        # The best ranked is the least loaded of the warmest (rank: not loaded, in flight, ...):
        # a deployment may be put first when it is as warm (``loaded[i] is True``, unless the
        # best is cold too) and has at most ``limit`` attempts in flight (``loads[i] >> 8``).
        cold = ranked[0] >> 56
        limit = (ranked[0] >> 24 & 0xFFFFFFFF) + index.imbalance
        target, reason, outcome = -1, LOAD, MISS
        if affinity.key is not None:
            target = rendezvous(affinity.key, same_model.endpoints)
            if _may_lead(loads, loaded, cold, limit, target):
                reason, outcome = KEY, HIT
            else:
                target, outcome = -1, LOAD_OVERRIDE
        else:
            digests = affinity.digests
            found = index.longest(model, digests, positions) if digests else None
            if found is not None:
                if _may_lead(loads, loaded, cold, limit, found[0]):
                    outcome = HIT
                else:
                    outcome = LOAD_OVERRIDE
                    allowed = functools.partial(_may_lead, loads, loaded, cold, limit)
                    found = index.longest(model, digests, positions, allowed)
                if found is not None:
                    target, reason = found[0], prefix_reason(found[1])
                    affinity.held = (same_model.endpoints[target], model, found[1])
            if target < 0:
                allowed = functools.partial(_may_lead, loads, loaded, cold, limit)
                target = self._spread(index, same_model.endpoints, loads, allowed, turn)
                if target >= 0:
                    reason = SPREAD
        if affinity.outcome is None:
            affinity.outcome = outcome
            index.count(outcome)
        affinity.chosen[model] = (
            (same_model.endpoints[target], reason, positions)
            if target >= 0
            else (None, LOAD, positions)
        )
        return target

    @staticmethod
    def _spread(
        index: AffinityIndex,
        endpoints: Sequence[str],
        loads: Sequence[int],
        allowed: Callable[[int], bool],
        turn: int,
    ) -> int:
        """Where a new conversation goes: of the allowed deployments with the fewest attempts
        in flight, those within `SPREAD_BANDS` latency bands of the fastest of them (an
        unmeasured one, band 0, is the fastest), the one holding the fewest prefixes
        (`AffinityIndex.emptiest`; equals take turns), so that conversations fill the servers'
        caches evenly instead of piling on the one that looks fastest (a server that answers
        from its cache does); -1 when fewer than two qualify (load decides)."""
        usable = [i for i in range(len(endpoints)) if allowed(i)]
        if len(usable) < 2:
            return -1
        least = min(loads[i] >> 8 for i in usable)
        usable = [i for i in usable if loads[i] >> 8 == least]
        if len(usable) < 2:
            return -1
        fastest = min(loads[i] & 0xFF for i in usable)
        near = [i for i in usable if loads[i] & 0xFF <= fastest + SPREAD_BANDS]
        if len(near) < 2:
            return -1
        return near[index.emptiest([endpoints[i] for i in near], turn % len(near))]

    def _loaded(self, same_model: ModelDeployments, model: str) -> Sequence[bool | None]:
        """Whether ``model`` is loaded at each of ``same_model``'s deployments (`in_listing`;
        None: unknown, or a deployment that cannot say)."""
        resident = self._resident.names(same_model.listers)
        aliases = listed_as(model)  # once a model, not once a deployment
        return [
            None if names is None else not names.isdisjoint(aliases)
            for names in map(resident.get, same_model.endpoints)
        ]


def _may_lead(
    loads: Sequence[int], loaded: Sequence[bool | None] | None, cold: int, limit: int, at: int
) -> bool:
    """Whether affinity may put the deployment at index ``at`` first (`Balancer._affine`): it
    is as warm as the best ranked (loaded there, unless the best is not loaded either) and
    has at most ``limit`` attempts in flight."""
    return bool(cold or loaded is None or loaded[at] is True) and loads[at] >> 8 <= limit
