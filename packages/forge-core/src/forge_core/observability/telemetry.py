"""forge's observer of one router: the observation each routed request gets, and the attribute
sets its spans and metrics repeat, built once.

One `Telemetry` per router; `Telemetry.observe` gives each routed request an observation,
which `Route` calls at a few points: a drop, an attempt's start and end, an abandoned attempt,
the answer, the final error. The plain `Observation` only prices the answer (``route.cost_usd``)
and counts its tokens for `Forge.stats`; when ``telemetry.enabled``, ``opentelemetry-api`` is
installed (``forge-core[otel]``) and spans and metrics would go somewhere (`Instruments.active`),
it is a `Traced` observation, which also makes one span per request with a child span per
attempt, and the GenAI client metrics and forge's own. docs/observability.md lists every name.
Every router's observer is also watched by the local-model gauges (`watch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forge_core._caches import put_bounded
from forge_core.observability.gauges import watch
from forge_core.observability.observation import Observation
from forge_core.observability.otel import current_instruments, latest_conventions
from forge_core.observability.pricing import Pricing
from forge_core.observability.redact import is_http, safe_url, server_attributes
from forge_core.observability.traced import AffinityOutcome, AttemptSpan, ServedAttributes, Traced
from forge_core.types import ChatRequest, EmbeddingRequest, Provider, RouteTrail

if TYPE_CHECKING:
    from forge_core.config.schema import ForgeConfig
    from forge_core.observability.metrics import Metrics
    from forge_core.observability.observed import ObservedCandidate as Candidate

__all__ = ["Telemetry"]


class Telemetry:
    """The observer of one router: prices answers, and traces requests when enabled."""

    def __init__(self, config: ForgeConfig, metrics: Metrics, backends: Mapping[str, Any]) -> None:
        self.enabled = config.telemetry.enabled
        self.pricing = Pricing(config.pricing)
        self.metrics = metrics
        self.backends = backends
        #: Emit only the latest GenAI conventions (``OTEL_SEMCONV_STABILITY_OPT_IN``), read once.
        self.latest = latest_conventions()
        # Attribute sets that repeat on every request, built once (they are never mutated).
        self._attempts: dict[tuple[str, str, str, str], AttemptSpan] = {}
        self._requests: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
        self._served: dict[tuple[str, str, str, str, str], ServedAttributes] = {}
        watch(self)

    def provider_attributes(self, attributes: dict[str, Any], provider: Provider | None) -> None:
        """Set ``gen_ai.provider.name`` (and, unless only the latest conventions are asked
        for, its name before semantic conventions 1.37, ``gen_ai.system``)."""
        name = provider.value if provider is not None else "forge"
        attributes["gen_ai.provider.name"] = name
        if not self.latest:
            attributes["gen_ai.system"] = name

    def attempt_attributes(self, candidate: Candidate, state: str) -> AttemptSpan:
        """The name of an attempt span at ``candidate``, whether it is an HTTP call, and the
        attributes of one that answered, first try, in breaker ``state`` (unchanged): others
        start from a copy and add their own."""
        key = (candidate.deployment, candidate.model, candidate.endpoint, state)
        cached = self._attempts.get(key)
        if cached is None:
            http = is_http(candidate.endpoint)
            attributes: dict[str, Any] = {
                "forge.provider": candidate.provider.value,
                "forge.deployment": candidate.deployment,
                "forge.model": candidate.model,
                "forge.endpoint": safe_url(candidate.endpoint),
            }
            if http:
                attributes.update(server_attributes(candidate.endpoint))
            attributes["forge.breaker.state"] = state
            start = dict(attributes)
            attributes["forge.attempt.outcome"] = "ok"
            name = f"forge.attempt {candidate.key}"
            cached = put_bounded(self._attempts, key, (name, http, attributes, start))
        return cached

    def request_attributes(self, operation: str, candidate: Candidate) -> Mapping[str, Any]:
        """What a request for ``operation`` at ``candidate`` is known by before it is answered:
        operation, provider, requested model, server (the attributes samplers are given)."""
        key = (operation, candidate.deployment, candidate.model, candidate.endpoint)
        cached = self._requests.get(key)
        if cached is None:
            attributes: dict[str, Any] = {"gen_ai.operation.name": operation}
            self.provider_attributes(attributes, candidate.provider)
            attributes["gen_ai.request.model"] = candidate.model
            if is_http(candidate.endpoint):
                attributes.update(server_attributes(candidate.endpoint))
            cached = put_bounded(self._requests, key, attributes)
        return cached

    def served_attributes(
        self, operation: str, candidate: Candidate, model: str
    ) -> ServedAttributes:
        """The metric attributes of an answer from ``candidate`` by ``model``: its duration's,
        and its input and output token counts' (the same with ``gen_ai.token.type``)."""
        key = (operation, candidate.deployment, candidate.model, candidate.endpoint, model)
        cached = self._served.get(key)
        if cached is None:
            attributes = dict(self.request_attributes(operation, candidate))
            attributes["gen_ai.response.model"] = model
            served = (
                attributes,
                {**attributes, "gen_ai.token.type": "input"},
                {**attributes, "gen_ai.token.type": "output"},
            )
            cached = put_bounded(self._served, key, served)
        return cached

    def observe(
        self,
        request: ChatRequest | EmbeddingRequest,
        candidates: Sequence[Candidate],
        trail: RouteTrail,
        context: Any = None,
        affinity: AffinityOutcome | None = None,
    ) -> Observation:
        """The observation of one routed request; ``context`` is the OpenTelemetry context its
        span is a child of (None: the current one); ``affinity``: the request's prefix-affinity
        outcome, counted on ``forge.router.affinity`` when the request ends."""
        if self.enabled:
            instruments = current_instruments()
            if instruments is not None and instruments.active():
                return Traced(self, instruments, request, candidates, trail, context, affinity)
        return Observation(self, trail)

    def context(self) -> Any:
        """The caller's OpenTelemetry context, for a request routed on another thread (sync
        streams run on forge's background loop); None when tracing is off."""
        if not self.enabled:
            return None
        instruments = current_instruments()
        if instruments is None or not instruments.active():
            return None
        return instruments.get_current()
