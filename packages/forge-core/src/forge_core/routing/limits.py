"""What the config fixes per deployment for one attempt: its time limits, the allowance a
cold start gets (and forgiving one cold start's timeout), and its rate budget."""

from __future__ import annotations

from collections.abc import Mapping

from forge_core.backends.base import ChatBackend
from forge_core.config.schema import ForgeConfig, read_timeout_for
from forge_core.routing.budget import Budget
from forge_core.routing.planning.candidates import Candidate

__all__ = ["DeploymentLimits"]


class DeploymentLimits:
    """Per deployment: first-token and idle limits, the cold-start allowance, the rate budget.

    Worked out from the config once per deployment and kept; the cold starts forgiven so far
    are this router's own.
    """

    def __init__(self, config: ForgeConfig, backends: Mapping[str, ChatBackend]) -> None:
        self._config = config
        self._backends = backends
        self._limits: dict[str, tuple[float, float]] = {}
        self._budgets: dict[str, tuple[str, Budget] | None] = {}
        #: (endpoint, model) whose cold start timed out and was forgiven (`forgive_load`).
        self._forgiven_loads: set[tuple[str, str]] = set()

    def limits(self, deployment: str) -> tuple[float, float]:
        """The first-token and idle limits for ``deployment`` (fixed by the config: kept)."""
        limits = self._limits.get(deployment)
        if limits is None:
            routing = self._config.routing
            default = read_timeout_for(self._config, deployment)
            limits = (
                routing.first_token_timeout_seconds or default,
                routing.idle_timeout_seconds or default,
            )
            self._limits[deployment] = limits
        return limits

    def load_allowance(self, candidate: Candidate) -> float:
        """Seconds added to ``candidate``'s first-token limit: its deployment's
        ``load_timeout_seconds`` when the model is not loaded there (a cold start), else 0."""
        if candidate.loaded is not False:
            return 0.0
        spec = self._config.providers.deployments.get(candidate.deployment)
        return spec.load_timeout_seconds if spec is not None else 0.0

    def forgive_load(self, candidate: Candidate) -> bool:
        """Whether a timeout while ``candidate``'s model was loading is forgiven (no circuit
        failure): once, until the model answers there. A second one means the host cannot
        load it in time (too big, or stuck): it counts as any timeout, so the circuit opens
        instead of every request waiting out the load allowance again."""
        key = (candidate.endpoint, candidate.model)
        if key in self._forgiven_loads:
            return False
        self._forgiven_loads.add(key)
        return True

    def loaded(self, candidate: Candidate) -> None:
        """``candidate``'s model answered after a cold start: a later load is forgiven again."""
        self._forgiven_loads.discard((candidate.endpoint, candidate.model))

    def budget_of(self, deployment: str) -> tuple[str, Budget] | None:
        """``deployment``'s rate budget and the key it is counted under (the deployment and a
        fingerprint of its API key), None when it has none."""
        if deployment in self._budgets:
            return self._budgets[deployment]
        spec = self._config.providers.deployments[deployment]
        budget = Budget(rpm=spec.rpm, tpm=spec.tpm)
        found: tuple[str, Budget] | None = None
        if budget:
            fingerprint = getattr(self._backends.get(deployment), "key_fingerprint", None)
            key = (fingerprint() if fingerprint is not None else None) or "no-key"
            found = (f"{deployment}:{key}", budget)
        self._budgets[deployment] = found
        return found
