"""ForgeEmbeddings on the embedded GGUF, run in process by forge's ``huggingface`` provider:
LangChain's standard integration tests, then what a vector store relies on.

Retrieval over tests/data with a LangChain vector store is the cookbook's
``langchain_rag.py``, run by tests/test_cookbook_local_model.py.
"""

from __future__ import annotations

import math
from typing import Any

import forge_core
import pytest
from forge_test_support import closed_port_url, config_for, embedded_in_process
from langchain_core.embeddings import Embeddings
from langchain_forge import ForgeEmbeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

pytestmark = pytest.mark.local_model

EMBEDDED = f"huggingface:{forge_core.EMBEDDED_MODEL}"


class TestForgeEmbeddingsInProcess(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return ForgeEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"config": config_for(embedded_in_process()), "batch_size": 2}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_batched_sync_and_async_vectors_are_the_same_vectors() -> None:
    embeddings = ForgeEmbeddings(config=config_for(embedded_in_process()), batch_size=2)
    texts = ["the volcano erupted", "bread rises in the oven", "a python function"]
    one_call = ForgeEmbeddings(config=config_for(embedded_in_process())).embed_documents(texts)
    batched = embeddings.embed_documents(texts)
    queries = [embeddings.embed_query(text) for text in texts]
    for expected, got, query in zip(one_call, batched, queries, strict=True):
        assert _cosine(expected, got) == pytest.approx(1.0, abs=1e-4)
        assert _cosine(expected, query) == pytest.approx(1.0, abs=1e-4)


async def test_async_vectors_match_sync_ones() -> None:
    embeddings = ForgeEmbeddings(config=config_for(embedded_in_process()))
    sync = embeddings.embed_query("lava flows down the mountain")
    asynchronous = await embeddings.aembed_query("lava flows down the mountain")
    assert _cosine(sync, asynchronous) == pytest.approx(1.0, abs=1e-4)


def test_a_refused_ollama_falls_back_to_the_model_in_process_and_stays_there() -> None:
    embeddings = ForgeEmbeddings(
        config=config_for({"name": "ollama", "base_url": closed_port_url()}, embedded_in_process())
    )
    assert embeddings.served is None
    vectors = embeddings.embed_documents(["one", "two", "three"])
    assert len(vectors) == 3
    assert embeddings.served == EMBEDDED
    first_route = embeddings.route
    assert first_route is not None
    assert [(a.provider.value, a.ok) for a in first_route.attempts] == [
        ("ollama", False),
        ("huggingface", True),
    ]

    embeddings.embed_query("pinned")
    pinned_route = embeddings.route
    assert pinned_route is not None
    assert [(a.provider.value, a.ok) for a in pinned_route.attempts] == [("huggingface", True)]


def test_the_same_text_gives_the_same_vector_as_llamaindex_forge() -> None:
    """Both wrappers route through forge_core's Embedder: one model, one space."""
    llamaindex_forge = pytest.importorskip("llamaindex_forge")
    config = config_for(embedded_in_process())
    text = "Photosynthesis turns sunlight into sugar."
    langchain_vector = ForgeEmbeddings(config=config).embed_query(text)
    llamaindex = llamaindex_forge.ForgeEmbedding(config=config)
    llamaindex_vector = llamaindex.get_text_embedding(text)
    assert llamaindex.model_name == EMBEDDED
    assert _cosine(langchain_vector, llamaindex_vector) == pytest.approx(1.0, abs=1e-4)
