"""What one request's `Route` needs from its router: the shared parts, and nothing else.

A `Route` gets this small object rather than the `Router`, so the bookkeeping of one request
depends on the parts it uses (breakers through its candidates, health, load, budgets, the
affinity index, the observer, the clock) and the router on the route, not the other way round.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from forge_core.config.schema import RoutingConfig
from forge_core.observability.metrics import Metrics
from forge_core.observability.telemetry import Telemetry
from forge_core.routing.affinity import AffinityIndex
from forge_core.routing.budget import RateBudgets
from forge_core.routing.health import HealthCache
from forge_core.routing.limits import DeploymentLimits
from forge_core.routing.load import DeploymentLoad, ResidentModels
from forge_core.routing.planning.planner import Planner
from forge_core.routing.retry import Clock, RetryPolicy

__all__ = ["RoutingContext"]


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """The parts of a router that every request it routes shares."""

    #: The ``routing`` section: deadlines, breaker and mid-stream policy.
    routing: RoutingConfig
    clock: Clock
    rng: random.Random
    retry_policy: RetryPolicy
    #: Which candidates a request gets, in order (`Planner.lazy`).
    planner: Planner
    #: Per deployment: time limits, cold-start allowance, rate budget.
    limits: DeploymentLimits
    health: HealthCache
    #: Attempts in flight and recent latency per endpoint.
    load: DeploymentLoad
    #: What each Ollama host has loaded.
    resident: ResidentModels
    budgets: RateBudgets
    metrics: Metrics
    #: Cost, spans and metrics of each request (`Telemetry.observe`).
    telemetry: Telemetry
    #: Which deployment served which prompts (``routing.affinity``), for balancing.
    affinity: AffinityIndex
