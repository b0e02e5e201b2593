"""What the observer reads of the router's objects: two small protocols.

Telemetry sees a routed attempt through these, so observability depends on no routing module
(`forge_core.routing.planning.candidates.Candidate` and
`forge_core.routing.breaker.CircuitBreaker` fit them as they are).
"""

from __future__ import annotations

import enum
from typing import Protocol

from forge_core.types import Provider

__all__ = ["ObservedCandidate", "ObservedCircuit"]


class ObservedCircuit(Protocol):
    """An endpoint's circuit breaker, as far as spans name its state."""

    @property
    def state(self) -> enum.Enum:
        """The circuit's state now; its ``value`` is the name a span records."""
        ...


class ObservedCandidate(Protocol):
    """One deployment and model the router tried."""

    @property
    def provider(self) -> Provider:
        """The provider kind."""
        ...

    @property
    def model(self) -> str:
        """The model asked for."""
        ...

    @property
    def deployment(self) -> str:
        """The deployment's name."""
        ...

    @property
    def endpoint(self) -> str:
        """The endpoint (a URL without credentials, or an in-process name)."""
        ...

    @property
    def local(self) -> bool:
        """Whether the deployment counts as local."""
        ...

    @property
    def key(self) -> str:
        """``provider:model``, the key of its metrics."""
        ...

    @property
    def breaker(self) -> ObservedCircuit:
        """The endpoint's circuit breaker."""
        ...
