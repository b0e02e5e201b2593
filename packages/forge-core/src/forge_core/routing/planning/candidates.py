"""What a plan is made of: `Candidate`, one deployment and model the router may call, and
`Plan`, a request's candidates in order, worked out only as far as the router asks for them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from forge_core.backends.base import ChatBackend
from forge_core.routing.breaker import CircuitBreaker
from forge_core.types import Drop, Provider

__all__ = ["Candidate", "Plan"]


@dataclass(frozen=True)
class Candidate:
    """One deployment and model the router may call, with its endpoint's circuit breaker."""

    provider: Provider
    model: str
    backend: ChatBackend
    #: The backend's endpoint (`endpoint_of`): the key of its breaker and health entry.
    endpoint: str
    breaker: CircuitBreaker
    #: The deployment's name (`DeploymentSpec.name`; the kind's own for a default one).
    deployment: str
    #: Whether the deployment counts as local (`DeploymentSpec.local`).
    local: bool
    #: Whether the model is loaded at the endpoint (Ollama's ``/api/ps``, cached briefly):
    #: False when the endpoint said it is not (a request there waits for it to load), None
    #: when unknown (not an Ollama host, or the listing failed or was not asked).
    loaded: bool | None = None

    @property
    def key(self) -> str:
        """``deployment:model``, the metrics key (``provider:model`` for a default one)."""
        return f"{self.deployment}:{self.model}"


class Plan(Sequence[Candidate]):
    """A request's candidates in order, worked out only as far as they are asked for.

    The router tries the first candidate before it needs the next one, so a request that the
    first one answers pays for planning that one (and, for its retry policy, whether another
    follows), however many deployments the config has; a balanced order entry ranks all of
    its deployments first. Each candidate left out on the way is appended to ``drops`` when it
    is reached, and told to ``on_drop``. `len` and iterating to the end plan everything.
    """

    __slots__ = ("_found", "_steps", "drops", "on_drop")

    def __init__(self, steps: Iterable[Candidate | Drop], drops: list[Drop] | None = None) -> None:
        self._found: list[Candidate] = []
        self._steps: Iterator[Candidate | Drop] | None = iter(steps)
        self.drops: list[Drop] = [] if drops is None else drops
        self.on_drop: Callable[[Drop], None] | None = None

    def _next(self) -> bool:
        """Plan up to the next candidate; False when there is none."""
        steps = self._steps
        if steps is None:
            return False
        for step in steps:
            if isinstance(step, Candidate):
                self._found.append(step)
                return True
            self.drops.append(step)
            if self.on_drop is not None:
                self.on_drop(step)
        self._steps = None
        return False

    def _through(self, index: int) -> bool:
        """Plan until candidate ``index`` is known; whether there is one."""
        found = self._found
        while len(found) <= index:
            if not self._next():
                return False
        return True

    def first(self) -> Candidate | None:
        """The first candidate, None when there is none."""
        return self._found[0] if self._through(0) else None

    def has_after(self, index: int) -> bool:
        """Whether a candidate follows candidate ``index`` (plans at most one more)."""
        return self._through(index + 1)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Candidate]: ...

    def __getitem__(self, index: int | slice) -> Candidate | Sequence[Candidate]:
        if isinstance(index, slice) or index < 0:
            self._through(sys.maxsize)
        else:
            self._through(index)
        return self._found[index]

    def __len__(self) -> int:
        self._through(sys.maxsize)
        return len(self._found)

    def __iter__(self) -> Iterator[Candidate]:
        index = 0
        while self._through(index):
            yield self._found[index]
            index += 1

    def __bool__(self) -> bool:
        return self._through(0)

    def __repr__(self) -> str:
        more = "" if self._steps is None else ", ..."
        return f"Plan([{', '.join(c.key for c in self._found)}{more}])"
