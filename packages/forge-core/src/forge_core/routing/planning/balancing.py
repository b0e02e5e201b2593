"""Balancing: the order of the deployments that serve the same model in one order entry.

With ``routing.balance: warm-first`` and several deployments in an entry, `Balancer` ranks the
deployments of each model: where the model is loaded first (Ollama's ``/api/ps``, through
`ResidentModels`), then the fewest attempts in flight, then the lowest recent latency band
(`DeploymentLoad`); equals take turns. The model order of the entry (`CandidateOrder`) comes
first either way: balancing only reorders the hosts of one model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

from forge_core.routing.breaker import BreakerRegistry
from forge_core.routing.health import HealthCache, HealthStatus
from forge_core.routing.load import DeploymentLoad, ResidentModels, listed_as
from forge_core.routing.planning.candidates import Candidate
from forge_core.routing.planning.compiled import CandidateOrder, EntryDeployment, ModelDeployments
from forge_core.routing.planning.drops import MissingModels, as_drop, down_reason, unfit_reason
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
    ) -> None:
        self._health = health
        self._breakers = breakers
        self._load = load
        self._resident = resident
        self._missing = missing
        self._candidate = candidate
        #: Whose turn it is among equally good hosts (`steps`).
        self._turns = itertools.count()

    def steps(
        self, order: CandidateOrder, needs: ModelRequirements, local_only: bool
    ) -> Iterator[Candidate | Drop]:
        """The pairs with the deployments of each model in balance order: the model loaded
        there first, then the fewest attempts in flight, then the lowest recent latency band
        (within 25%: equally fast; one not measured yet first, so it gets measured); equals
        take turns. Every deployment of a model is ranked before the first is planned; one
        that lacks the model or whose circuit or cached health turns calls away is neither
        ranked nor asked what it has loaded."""
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
                    reason = unfit_reason(deployment, model, needs, local_only)
                    if reason is not None:
                        yield as_drop(deployment, model, reason)
                    else:
                        here = None if loaded is None else loaded[index]
                        yield self._candidate(deployment, model, here)
                start = end

    def _loaded(self, same_model: ModelDeployments, model: str) -> Sequence[bool | None]:
        """Whether ``model`` is loaded at each of ``same_model``'s deployments (`in_listing`;
        None: unknown, or a deployment that cannot say)."""
        resident = self._resident.names(same_model.listers)
        aliases = listed_as(model)  # once a model, not once a deployment
        return [
            None if names is None else not names.isdisjoint(aliases)
            for names in map(resident.get, same_model.endpoints)
        ]
