"""`Embedder`: embeddings that stay in one vector space, routed by a `Forge`.

Which provider embeds is the router's decision, made as for chat (`Forge.embed`): the
``huggingface`` provider in process (llama-cpp-python in embedding mode on a local GGUF, in
the one local-model pool), Ollama (``/api/embed``, or ``/v1/embeddings`` with ``api: openai``),
OpenAI's ``/embeddings`` (also served by OpenAI-compatible servers such as llama-cpp-python's
with ``--embedding``). Anthropic and OpenRouter have no embeddings API here; they are dropped
with that reason.

What `Embedder` adds is the one thing chat does not need: vectors from two different models
live in different spaces, so by default it keeps to the provider and model that served its
first request. A later failure of that model is an error, never a silent switch that would mix
vector spaces in one index.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from forge_core.backends.http.pool import ClientPool
from forge_core.config.schema import ForgeConfig
from forge_core.errors import ForgeError
from forge_core.forge import Forge
from forge_core.routing.planning.candidates import Candidate
from forge_core.types import Drop, EmbeddingRequest, EmbeddingResponse, Provider, RouteTrail

__all__ = ["Embedder", "EmbeddingResponse"]


class Embedder:
    """Text embeddings routed by forge: local first, with fallback, one vector space.

    ``forge`` is the `Forge` to route through (its breakers, health and metrics are shared
    with its chat); without one, a `Forge` is made from ``config``, ``overrides``, ``pool``
    and ``env`` as `Forge` takes them. ``model`` (``provider:model``) pins the first
    candidate; other providers use ``models`` (provider name -> model) or their default
    embedding model. Once a candidate has served, ``pin_after_first`` (default) keeps every
    later call on that provider and model, because vectors of different models cannot be
    compared.

    Example:
        ```python
        embedder = Embedder()
        vectors = embedder.embed(["first text", "second text"])
        print(embedder.last_route.provider, len(vectors[0]))
        ```
    """

    def __init__(
        self,
        config: ForgeConfig | str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        models: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        pin_after_first: bool = True,
        forge: Forge | None = None,
        pool: ClientPool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        #: Whether this embedder made its `Forge` (then `close` closes it).
        self._owns_forge = forge is None
        self.forge = forge or Forge(config, overrides=overrides, pool=pool, env=env)
        self.model = model
        self._models = {Provider(name): value for name, value in (models or {}).items()}
        self.pin_after_first = pin_after_first
        self._served: tuple[Provider, str] | None = None
        self._served_lock = threading.Lock()
        self.last_route: RouteTrail | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, served={self.served!r})"

    def close(self) -> None:
        """Close the `Forge` this embedder made (`Forge.close`); one it was given is left to
        its owner."""
        if self._owns_forge:
            self.forge.close()

    async def aclose(self) -> None:
        """Async `close`."""
        if self._owns_forge:
            await self.forge.aclose()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def config(self) -> ForgeConfig:
        """The configuration of the `Forge` this embedder routes through."""
        return self.forge.config

    @property
    def served(self) -> str | None:
        """``provider:model`` that served the first successful call, if any yet."""
        return f"{self._served[0].value}:{self._served[1]}" if self._served else None

    def request(self, texts: Sequence[str]) -> EmbeddingRequest:
        """The routed request for ``texts``: pinned to the served model once there is one."""
        if isinstance(texts, str):
            raise TypeError("Embedder.embed takes a list of texts, not one string")
        served = self._served if self.pin_after_first else None
        if served is not None:
            return EmbeddingRequest(
                input=list(texts), model=f"{served[0].value}:{served[1]}", fallback=False
            )
        return EmbeddingRequest(input=list(texts), model=self.model, models=self._models)

    def plan(self) -> tuple[list[Candidate], list[Drop]]:
        """The candidates the next call would try, in order, and those dropped (with why)."""
        candidates, drops = self.forge.router.plan(self.request([]))
        if self._served is not None and self.pin_after_first:
            others, _ = self.forge.router.plan(
                EmbeddingRequest(input=[], model=self.model, models=self._models)
            )
            reason = f"this Embedder's vectors come from {self.served}"
            drops = [
                Drop(provider=other.provider, model=other.model, reason=reason)
                for other in others
                if (other.provider, other.model) != self._served
            ] + drops
        return candidates, drops

    def embed_with_route(self, texts: Sequence[str]) -> EmbeddingResponse:
        """Vectors for ``texts`` from the first candidate that answers, with the route."""
        with self._route_kept():
            return self._served_by(self.forge.embed(self.request(texts)))

    async def aembed_with_route(self, texts: Sequence[str]) -> EmbeddingResponse:
        """Async `embed_with_route`."""
        with self._route_kept():
            return self._served_by(await self.forge.aembed(self.request(texts)))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order. An empty batch returns ``[]`` without a call."""
        if not texts:
            return []
        return self.embed_with_route(texts).vectors

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """Async `embed`."""
        if not texts:
            return []
        return (await self.aembed_with_route(texts)).vectors

    @contextmanager
    def _route_kept(self) -> Iterator[None]:
        """Keep the route of a failed call as `last_route` too."""
        try:
            yield
        except ForgeError as exc:
            route = getattr(exc, "route", None)
            if isinstance(route, RouteTrail):
                self.last_route = route
            raise

    def _served_by(self, response: EmbeddingResponse) -> EmbeddingResponse:
        # The candidate's model (not the echo in the body) is what later calls pin to.
        served = response.route.attempts[-1]
        with self._served_lock:
            if self._served is None:
                self._served = (served.provider, served.model)
        self.last_route = response.route
        return response
