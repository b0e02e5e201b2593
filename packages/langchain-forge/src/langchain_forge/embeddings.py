"""`ForgeEmbeddings`: LangChain embeddings routed by `forge_core.Embedder`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import forge_core
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from langchain_forge._utils import api_key_layer, endpoint_provider, forge_overrides

__all__ = ["ForgeEmbeddings"]

#: Inputs per routed call when ``batch_size`` is not set.
DEFAULT_BATCH_SIZE = 32

#: Providers with an embeddings API that ``api_key`` / ``base_url`` can configure.
_EMBEDDING_ENDPOINTS = frozenset({forge_core.Provider.OPENAI, forge_core.Provider.OLLAMA})

#: Built embedders: one lock for all instances, because it must survive ``copy.deepcopy``.
_build_lock = threading.Lock()


@dataclass(frozen=True)
class _EmbedderState:
    """A built `forge_core.Embedder` and the options it was built from.

    Copies of a `ForgeEmbeddings` share it, and so share its vector space: the embedder holds
    the pin to the model that served first, and a `Forge` (locks, pooled clients) that cannot
    be deep-copied.
    """

    inputs: tuple[Any, ...]
    embedder: forge_core.Embedder

    def __deepcopy__(self, memo: dict[int, Any]) -> _EmbedderState:
        return self


class ForgeEmbeddings(BaseModel, Embeddings):
    """Embeddings routed by forge: in process by default, Ollama or OpenAI when configured.

    The same routing as `llamaindex_forge.ForgeEmbedding` and as ForgeChat's chat: a
    `forge_core.Embedder` over the shared `forge_core.Forge` for these options
    (`forge_core.shared_forge`, through a `forge_core.ForgeSource`), so breakers, health and metrics are the ones chat uses. The
    candidates are the in-process GGUF (the embedded model unless one is named), Ollama's
    ``/api/embed`` and OpenAI's ``/embeddings`` (any OpenAI-compatible server); providers
    without an embeddings API are skipped.

    One vector space: once a provider has served, every later call of this instance stays on
    that provider and model (``pin_after_first``), so a vector store never mixes vectors of
    two models. If the pinned model then fails, the call raises instead of falling back.
    `served` names the pinned ``provider:model``; `route` is the last call's route trail.

    Setup:
        ```bash
        pip install -U langchain-forge "forge-core[llama]"
        ```

    Key init args:
        model: str | None
            ``provider:model`` (``huggingface:smollm2-135m``, ``ollama:nomic-embed-text``,
            ``openai:text-embedding-3-small``) pins the first candidate; None lets the
            config decide.
        models: dict[str, str] | None
            Embedding model per provider name, for the other candidates.
        batch_size: int
            Texts per routed call; ``embed_documents`` splits longer lists.
        config, fallback_order, local_first, local_only, timeout, max_retries:
            Routing, as on ``ForgeChat``; None keeps the config's value.
        api_key, base_url:
            The key (``openai``) and base URL (``openai``, ``ollama``) of the provider
            ``model`` pins, or of ``openai`` when ``model`` names none.

    Instantiate and embed:
        ```python
        from langchain_forge import ForgeEmbeddings

        embeddings = ForgeEmbeddings(local_only=True)
        vectors = embeddings.embed_documents(["first text", "second text"])
        query = embeddings.embed_query("which text?")
        embeddings.served  # "huggingface:smollm2-135m"
        await embeddings.aembed_documents(["async too"])
        ```

    In a vector store:
        ```python
        from langchain_core.vectorstores import InMemoryVectorStore

        store = InMemoryVectorStore.from_texts(texts, embedding=ForgeEmbeddings())
        store.similarity_search("question", k=1)
        ```
    """

    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    model: str | None = None
    """``provider:model`` or a bare model name; None lets the forge config decide."""

    models: dict[str, str] | None = None
    """Embedding model per provider name (``{"ollama": "nomic-embed-text"}``) for the
    candidates ``model`` does not pin; a provider not named uses its default."""

    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0)
    """How many texts one routed call embeds; ``embed_documents`` sends longer lists in
    batches of this size, one after another (the first one decides the vector space)."""

    pin_after_first: bool = True
    """Keep every call on the provider and model that served the first one, so vectors always
    share one space (a failure of that model then raises instead of switching models)."""

    config: forge_core.ForgeConfig | str | Path | None = Field(
        default_factory=lambda: os.environ.get("FORGE_CONFIG") or None
    )
    """A `forge_core.ForgeConfig` or the path of a ``forge.yaml``; defaults to ``$FORGE_CONFIG``.

    None uses ``./forge.yaml``, the user config dir, then forge's defaults.
    """

    fallback_order: list[str] | None = None
    """Providers or deployments (kinds, names, ``name:model``) to try, in order (``providers.fallback.order``); None keeps the config's."""

    local_first: bool | None = None
    """Try local providers before cloud ones (``model_preferences.local_first``)."""

    local_only: bool | None = None
    """Never send a text to a cloud provider (``model_preferences.local_only``)."""

    timeout: float | None = Field(default=None, gt=0)
    """Deadline in seconds for one routed call, fallbacks included
    (``routing.total_timeout_seconds``); None keeps the config's value."""

    max_retries: int | None = Field(default=None, ge=0)
    """Retries of one candidate after a retryable error (``routing.max_retries``)."""

    api_key: SecretStr | None = None
    """API key of ``openai`` (the cloud provider with an embeddings API here). None: the env
    var the config names (``api_key_env``). Never shown in a repr, an error or a log."""

    base_url: str | None = None
    """Base URL of the provider ``model`` pins (``openai:`` or ``ollama:``), or of ``openai``
    (any OpenAI-compatible server) when ``model`` names no provider; None keeps the config's."""

    _state: _EmbedderState | None = PrivateAttr(default=None)
    _forge_source: forge_core.ForgeSource = PrivateAttr(default_factory=forge_core.ForgeSource)

    @model_validator(mode="after")
    def _check_endpoint_target(self) -> ForgeEmbeddings:
        """``api_key`` / ``base_url`` must configure a provider that embeds over HTTP."""
        if self.api_key is None and self.base_url is None:
            return self
        provider = self._endpoint_provider()
        if provider not in _EMBEDDING_ENDPOINTS:
            raise ValueError(
                f"ForgeEmbeddings: api_key and base_url configure openai or ollama; the pinned "
                f"provider '{provider.value}' takes neither"
            )
        if self.api_key is not None and provider is forge_core.Provider.OLLAMA:
            raise ValueError("ForgeEmbeddings: the pinned provider 'ollama' sends no api_key")
        return self

    # -- forge ----------------------------------------------------------------------------------

    def _endpoint_provider(self) -> forge_core.Provider:
        return endpoint_provider(self.model)

    def _overrides(self) -> dict[str, Any]:
        """forge.yaml-shaped overrides from the routing and endpoint fields that are set."""
        return forge_overrides(self)

    @property
    def embedder(self) -> forge_core.Embedder:
        """The `forge_core.Embedder` doing the work, built on first use.

        Built again (with a new pin) only if a field that changes routing was changed since;
        when its `forge_core.Forge` was closed it routes through a fresh one, its pin kept.
        Building loads the configuration, so a bad ``config`` raises `forge_core.ConfigError`
        on the first embedding call.
        """
        overrides = self._overrides()
        inputs = (
            self._forge_source.config_identity(self.config),
            overrides,
            self.api_key,
            self.model,
            self.models,
            self.pin_after_first,
        )
        with _build_lock:
            state = self._state
            if state is None or state.inputs != inputs:
                # The key reaches only forge's clients (a private env layer), never
                # os.environ, so subprocesses and other models do not inherit it.
                forge = self._forge_source.get(
                    self.config, overrides=overrides, api_keys=api_key_layer(self.api_key)
                )
                embedder = forge_core.Embedder(
                    forge=forge,
                    model=self.model,
                    models=self.models,
                    pin_after_first=self.pin_after_first,
                )
                state = self._state = _EmbedderState(inputs, embedder)
            elif state.embedder.forge.closed:
                # Its Forge was closed (close_shared_forges): a fresh one, the pin kept.
                state.embedder.forge = self._forge_source.get(
                    self.config, overrides=overrides, api_keys=api_key_layer(self.api_key)
                )
        return state.embedder

    @property
    def served(self) -> str | None:
        """``provider:model`` this instance's vectors come from, once a call has served."""
        return self._state.embedder.served if self._state is not None else None

    @property
    def route(self) -> forge_core.RouteTrail | None:
        """The route of the last routed call (attempts, drops, timings), if any."""
        return self._state.embedder.last_route if self._state is not None else None

    def _batches(self, texts: Sequence[str]) -> Iterator[list[str]]:
        if isinstance(texts, str):
            raise TypeError("ForgeEmbeddings.embed_documents takes a list of texts, not a string")
        texts = list(texts)
        for start in range(0, len(texts), self.batch_size):
            yield texts[start : start + self.batch_size]

    # -- Embeddings -----------------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order: one routed call per ``batch_size`` texts."""
        embedder = self.embedder
        vectors: list[list[float]] = []
        for batch in self._batches(texts):
            vectors.extend(embedder.embed(batch))
        return vectors

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async `embed_documents` (forge's native ``aembed``).

        The batches go one after another, not concurrently: until the first has served, two
        batches in flight could be served by different models.
        """
        embedder = self.embedder
        vectors: list[list[float]] = []
        for batch in self._batches(texts):
            vectors.extend(await embedder.aembed(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query text, in the same space as the documents'."""
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """Async `embed_query`."""
        return (await self.aembed_documents([text]))[0]
