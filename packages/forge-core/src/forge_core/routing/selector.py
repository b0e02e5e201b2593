"""`ProviderSelector`: a view over a router's planning with its own preference order."""

from __future__ import annotations

from collections.abc import Sequence

from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT
from forge_core.routing.health import HealthStatus
from forge_core.routing.planning.candidates import Candidate
from forge_core.routing.router import Router
from forge_core.types import ChatRequest, Drop, ModelRequirements, Provider

__all__ = ["ProviderSelector"]


class ProviderSelector:
    """``ProviderSelector``: which candidate serves given model requirements.

    A view over a `Router`'s planning (capabilities, ``local_only``, open circuits and cached
    health, all without a network call), with its own ``preference_order`` and
    ``fallback_enabled``. ``health_check_timeout`` bounds `check_health` probes.
    """

    def __init__(
        self,
        router: Router,
        preference_order: Sequence[Provider | str] | None = None,
        fallback_enabled: bool = True,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    ) -> None:
        self._router = router
        self.preference_order = (
            [str(p) for p in preference_order] if preference_order is not None else None
        )
        for entry in self.preference_order or []:
            if router.config.providers.resolve(entry) is None:
                raise ValueError(router.config.providers.unknown(entry))
        self.fallback_enabled = fallback_enabled
        self.health_check_timeout = health_check_timeout

    def candidates(
        self, model_requirements: ModelRequirements | None = None, *, local_only: bool | None = None
    ) -> tuple[list[Candidate], list[Drop]]:
        """Every usable candidate in order, and every dropped one with its reason."""
        return self._router.plan(
            ChatRequest(messages=[], local_only=local_only),
            needs=model_requirements or ModelRequirements(),
            preference_order=self.preference_order,
            fallback_enabled=self.fallback_enabled,
        )

    def select_provider(
        self, model_requirements: ModelRequirements | None = None, *, local_only: bool | None = None
    ) -> Candidate | None:
        """The first usable candidate, or None when every one is dropped."""
        usable, _ = self.candidates(model_requirements, local_only=local_only)
        return usable[0] if usable else None

    def check_health(self) -> dict[str, HealthStatus]:
        """Health of each preferred deployment's endpoint (cached, else a cheap probe;
        ``warming`` while a request waits there for a model to load), by deployment name (a
        kind in the preference order means each of its deployments)."""
        backends = self._router.backends
        providers = self._router.config.providers
        names: list[str] = []
        for entry in self.preference_order or list(backends):
            for name, _ in providers.resolve(entry) or []:
                if name in backends and name not in names:
                    names.append(name)
        return {
            name: self._router.check_health(backends[name], timeout=self.health_check_timeout)
            for name in names
        }
