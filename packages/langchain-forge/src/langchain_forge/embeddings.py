"""`ForgeEmbeddings`: LangChain embeddings routed by `forge_core.Embedder`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import forge_core
from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict, Field, PrivateAttr

__all__ = ["ForgeEmbeddings"]

#: Inputs per routed call when ``batch_size`` is not set.
DEFAULT_BATCH_SIZE = 32

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


class ForgeEmbeddings(forge_core.ForgeOptions, Embeddings):
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
    embeds: ClassVar[bool] = True

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

    _state: _EmbedderState | None = PrivateAttr(default=None)

    # -- forge ----------------------------------------------------------------------------------

    @property
    def embedder(self) -> forge_core.Embedder:
        """The `forge_core.Embedder` doing the work, built on first use.

        Built again (with a new pin) only if a field that changes routing was changed since;
        when its `forge_core.Forge` was closed it routes through a fresh one, its pin kept.
        Building loads the configuration, so a bad ``config`` raises `forge_core.ConfigError`
        on the first embedding call.
        """
        overrides = self.forge_overrides()
        inputs = (
            self.config_identity(),
            overrides,
            self.api_key,
            self.model,
            self.models,
            self.pin_after_first,
        )
        with _build_lock:
            state = self._state
            if state is None or state.inputs != inputs:
                forge = self.shared_forge()
                embedder = forge_core.Embedder(
                    forge=forge,
                    model=self.model,
                    models=self.models,
                    pin_after_first=self.pin_after_first,
                )
                state = self._state = _EmbedderState(inputs, embedder)
            elif state.embedder.forge.closed:
                # Its Forge was closed (close_shared_forges): a fresh one, the pin kept.
                state.embedder.forge = self.shared_forge()
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
