"""One routed request as `Route` reports it; the plain observation only prices the answer.

`Telemetry.observe` gives each routed request an `Observation`, which `Route` calls at a few
points: a drop, an attempt's start and end, an abandoned attempt, the answer, the final error.
The plain one prices the answer (``route.cost_usd``) and counts its tokens for `Forge.stats`;
the traced one, when tracing is on, is a subclass that also makes spans and metrics of them.
An observation reads its router's observer through `Observer` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from forge_core.types import ChatChunk, ChatResponse, Drop, EmbeddingResponse, RouteTrail

if TYPE_CHECKING:
    from forge_core.errors import ForgeError, ProviderError
    from forge_core.observability.metrics import Metrics
    from forge_core.observability.observed import ObservedCandidate as Candidate
    from forge_core.observability.pricing import Pricing

__all__ = ["Observation", "Observer"]


class Observer(Protocol):
    """A router's observer, as far as its observations read it (`Telemetry` fits)."""

    @property
    def pricing(self) -> Pricing:
        """The price table answers are priced by."""
        ...

    @property
    def metrics(self) -> Metrics:
        """The router's counters for `Forge.stats`, which count each answer's tokens and cost."""
        ...


class Observation:
    """One routed request as `Route` reports it; this base only prices the answer."""

    __slots__ = ("telemetry", "trail")

    def __init__(self, telemetry: Observer, trail: RouteTrail) -> None:
        self.telemetry = telemetry
        self.trail = trail

    def while_waiting(self) -> Callable[[], None] | None:
        """What to run while an attempt waits for its answer (`AttemptTimeouts.while_waiting`);
        None when there is nothing to do."""
        return None

    def dropped(self, drop: Drop) -> None:
        """A candidate was not called (its circuit refused, the deadline had passed)."""

    def attempt_started(self, candidate: Candidate, probe: bool) -> None:
        """The circuit admitted one attempt at ``candidate``."""

    def attempt_ended(self, candidate: Candidate, error: ProviderError | None) -> None:
        """The attempt answered (``error`` None) or failed; its breaker has been updated."""

    def abandoned(self, candidate: Candidate) -> None:
        """The caller gave up (cancelled, closed the stream) during an attempt: the request
        ends with the exception being handled."""

    def answered(
        self, candidate: Candidate, answer: ChatResponse | ChatChunk | EmbeddingResponse
    ) -> None:
        """The request's answer (a stream's last chunk): price it, count its tokens."""
        self.account(candidate, answer)

    def failed(self, error: ForgeError, *, stream: bool) -> None:
        """The request ends with ``error`` (every candidate failed, or a stream broke)."""

    def account(
        self, candidate: Candidate, answer: ChatResponse | ChatChunk | EmbeddingResponse
    ) -> tuple[int | None, int | None, float | None]:
        """Set ``route.cost_usd`` and count the tokens; returns (input, output, cost)."""
        input_tokens: int | None
        output_tokens: int | None
        cached = written = 0
        if isinstance(answer, EmbeddingResponse):
            input_tokens = answer.input_tokens
            output_tokens = None
        elif answer.usage is not None:
            input_tokens, output_tokens = answer.usage.input_tokens, answer.usage.output_tokens
            cached = answer.usage.cached_input_tokens
            written = answer.usage.cache_creation_input_tokens
        else:
            input_tokens = output_tokens = None
        local = candidate.local
        if input_tokens is None:
            cost = 0.0 if local else None
            self.trail.cost_usd = cost
            return None, None, cost
        output = output_tokens or 0
        pricing = self.telemetry.pricing
        deployment = candidate.deployment
        cost = pricing.cost(
            candidate.provider,
            answer.model,
            input_tokens,
            output,
            cached_input_tokens=cached,
            cache_creation_input_tokens=written,
            deployment=deployment,
            local=local,
        )
        if cost is None and answer.model != candidate.model:
            cost = pricing.cost(
                candidate.provider,
                candidate.model,
                input_tokens,
                output,
                cached_input_tokens=cached,
                cache_creation_input_tokens=written,
                deployment=deployment,
                local=local,
            )
        self.trail.cost_usd = cost
        self.telemetry.metrics.record_usage(
            candidate.key,
            local=local,
            input_tokens=input_tokens,
            output_tokens=output,
            cost_usd=cost,
        )
        return input_tokens, output_tokens, cost
