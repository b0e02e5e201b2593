"""`ForgeEmbedding`: a LlamaIndex embedding model routed by `forge_core.Embedder`."""

from __future__ import annotations

from typing import Any, ClassVar

import forge_core
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from llamaindex_forge.base import ForgeRouteEvent, dispatcher

__all__ = ["ForgeEmbedding"]

#: ``model_name`` until a provider has served (forge's configuration picks one).
UNPINNED_MODEL_NAME = "forge"


class ForgeEmbedding(forge_core.ForgeOptions, BaseEmbedding):
    """LlamaIndex embeddings from forge: in process by default, Ollama or OpenAI when configured.

    Which provider embeds is decided by `forge_core.Embedder` with the same configuration,
    selection and fallback as chat: the in-process GGUF (the embedded Gemma 3 270M unless a
    model is named), Ollama's ``/api/embed``, OpenAI's ``/embeddings``. Once one has served,
    every later call stays on it (``pin_after_first``), so an index never mixes vectors of two
    models; ``model_name`` then names it (``provider:model``) and `route` shows the last route.
    Each call dispatches a `ForgeRouteEvent` (route, usage, cost) through LlamaIndex's
    instrumentation.

    Example:
        ```python
        from llama_index.core import Settings, VectorStoreIndex
        from llamaindex_forge import ForgeEmbedding, ForgeLLM

        Settings.embed_model = ForgeEmbedding()  # fully local by default
        Settings.llm = ForgeLLM(max_tokens=128)
        index = VectorStoreIndex.from_documents(documents)
        print(index.as_query_engine().query("What is in these files?"))
        ```
    """

    embeds: ClassVar[bool] = True

    model: str | None = Field(
        default=None,
        description=(
            "Embedding model: 'provider:model' (e.g. 'huggingface:smollm2-135m', "
            "'ollama:nomic-embed-text', 'openai:text-embedding-3-small') pins the first "
            "candidate; None lets the forge configuration decide."
        ),
    )
    models: dict[str, str] | None = Field(
        default=None,
        description="Embedding model per provider name for the other candidates.",
    )
    pin_after_first: bool = Field(
        default=True,
        description=(
            "Keep every call on the provider and model that served the first one, so vectors "
            "always share one space (a failure then raises instead of switching models)."
        ),
    )

    _embedder: forge_core.Embedder | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        data.setdefault("model_name", data.get("model") or UNPINNED_MODEL_NAME)
        super().__init__(**data)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex uses for this class in serialization and callbacks."""
        return "ForgeEmbedding"

    @property
    def embedder(self) -> forge_core.Embedder:
        """The `forge_core.Embedder` doing the work, built on first use.

        It routes through `forge_core.shared_forge` for ``config`` and the routing options, so
        it shares breakers, health and HTTP pools with every `ForgeLLM` and `ForgeEmbedding`
        built with the same ones; its provider pinning stays its own. Building it loads the
        configuration, so a bad ``config`` raises `forge_core.ConfigError` here (on the first
        embedding call). When its `forge_core.Forge` was closed it routes through a fresh one,
        its pin kept.
        """
        if self._embedder is None:
            self._embedder = forge_core.Embedder(
                forge=self.shared_forge(),
                model=self.model,
                models=self.models,
                pin_after_first=self.pin_after_first,
            )
        elif self._embedder.forge.closed:
            # Its Forge was closed (close_shared_forges): a fresh one, the pin kept.
            self._embedder.forge = self.shared_forge()
        return self._embedder

    @property
    def route(self) -> forge_core.RouteTrail | None:
        """The route of the last embedding call (attempts, drops, timings), if any."""
        return self.embedder.last_route

    def _served(self, response: forge_core.EmbeddingResponse) -> list[list[float]]:
        served = self.embedder.served
        if served is not None:
            self.model_name = served
        usage = {"input_tokens": response.input_tokens} if response.input_tokens else None
        dispatcher.event(
            ForgeRouteEvent.of(
                "embeddings", response.provider, response.model, response.route, usage
            )
        )
        return response.vectors

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """One batch, one routed call."""
        if not texts:
            return []
        return self._served(self.embedder.embed_with_route(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """Async `_get_text_embeddings`."""
        if not texts:
            return []
        return self._served(await self.embedder.aembed_with_route(texts))

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await self._aget_text_embedding(query)
