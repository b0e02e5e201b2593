"""Why a deployment cannot serve a model now, known without a network call.

Each reason becomes a `Drop` in the request's route, so a route always says why a provider was
not tried: a model the endpoint said it lacks (`MissingModels`), a request the deployment may
not or cannot take (`unfit_reason`: ``local_only``, capabilities, ``check_ready``), an
endpoint that turns calls away (`down_reason`: its circuit, its cached health).
"""

from __future__ import annotations

from forge_core.config.schema import ForgeConfig
from forge_core.errors import ProviderError
from forge_core.routing.breaker import CircuitBreaker, CircuitState
from forge_core.routing.health import HealthCache, HealthStatus
from forge_core.routing.planning.compiled import EntryDeployment
from forge_core.routing.retry import Clock
from forge_core.types import Drop, ModelRequirements

__all__ = [
    "LACKS",
    "MissingModels",
    "as_drop",
    "circuit_reason",
    "described_first",
    "down_reason",
    "unfit_reason",
]

#: How the reason for leaving out a deployment that lacks a capability begins.
LACKS = "lacks "


def circuit_reason(breaker: CircuitBreaker) -> str:
    """Why ``breaker`` refuses a call now, as a drop reason."""
    if breaker.state is CircuitState.HALF_OPEN:
        return f"circuit half-open at {breaker.name}: a probe is already in flight"
    return f"circuit open at {breaker.name} (retry in {breaker.retry_in():.1f}s)"


def as_drop(deployment: EntryDeployment, model: str, reason: str) -> Drop:
    """``model`` at ``deployment``, left out for ``reason``."""
    spec = deployment.spec
    return Drop(provider=spec.kind, model=model, deployment=spec.name, reason=reason)


def described_first(
    deployment: EntryDeployment, model: str, needs: ModelRequirements, local_only: bool
) -> None:
    """Let ``deployment``'s server describe ``model`` before its capabilities are read, when
    ``needs`` asks for what only that description tells (`ModelDescriber`): a call bounded by
    the backend's health-check timeout, made once per model. An async request's plan finds it
    done (`Planner.aready` asked first, without blocking its loop)."""
    describer = deployment.describer
    if (
        describer is not None
        and not (local_only and not deployment.spec.local)
        and describer.should_describe(model, needs)
    ):
        describer.describe(model)


def unfit_reason(
    deployment: EntryDeployment, model: str, needs: ModelRequirements, local_only: bool
) -> str | None:
    """Why this request may not, or ``model`` cannot, go to ``deployment``."""
    if local_only and not deployment.spec.local:
        return "local_only: cloud not allowed"
    backend = deployment.backend
    unmet = needs.unmet(backend.capabilities(model))
    if unmet:
        return LACKS + ", ".join(unmet)
    try:
        backend.check_ready(model)
    except ProviderError as exc:
        return str(exc)
    return None


def down_reason(deployment: EntryDeployment, health: HealthCache) -> str | None:
    """Why ``deployment``'s endpoint turns calls away now: its circuit, its cached health."""
    breaker = deployment.breaker
    if breaker.rejects():
        return circuit_reason(breaker)
    if health.cached(deployment.endpoint) is HealthStatus.DOWN:
        return "health check: down (cached)"
    return None


class MissingModels:
    """The models endpoints answered "no such model" for (a 404): for
    ``routing.health_ttl_seconds`` planning drops that model there and tries the next one in
    the backend's order, with no call."""

    __slots__ = ("_clock", "_config", "said")

    def __init__(self, config: ForgeConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        #: (endpoint, model) -> when that endpoint last said it does not have the model.
        self.said: dict[tuple[str, str], float] = {}

    def note(self, endpoint: str, model: str) -> None:
        """Remember that ``endpoint`` just said it does not have ``model``."""
        self.said[(endpoint, model)] = self._clock.monotonic()

    def reason(self, endpoint: str, model: str) -> str | None:
        """Why ``model`` is not tried at ``endpoint`` now: it said it lacks it, and that is
        still trusted."""
        if not self.said:
            return None
        age = self._since(endpoint, model)
        if age is None:
            return None
        return f"model not found at {endpoint} ({age:.0f}s ago)"

    def _since(self, endpoint: str, model: str) -> float | None:
        """Seconds since ``endpoint`` said it lacks ``model``, if that is still trusted."""
        said = self.said.get((endpoint, model))
        if said is None:
            return None
        age = self._clock.monotonic() - said
        if age > self._config.routing.health_ttl_seconds:
            self.said.pop((endpoint, model), None)
            return None
        return age
