"""Embeddings from llama-cpp-python's real server on ``/v1/embeddings`` (one it starts with
``--embedding``), reached as an OpenAI-compatible endpoint.

The cassette-played HTTP paths are in test_embedder_http.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from forge_core import Embedder, Provider
from forge_test_support import LocalServer, config_for, run_local_server

pytestmark = pytest.mark.local_server


@pytest.fixture(scope="module")
def embedding_server(embedded_model: Path) -> Iterator[LocalServer]:
    with run_local_server(embedded_model, embedding=True, n_ctx=512) as server:
        yield server


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_llama_cpp_server_embeddings_are_pooled_per_text(embedding_server: LocalServer) -> None:
    # The server returns one vector per token for Gemma (its GGUF declares no pooling).
    config = config_for(
        {
            "name": "openai",
            "base_url": embedding_server.openai_base_url,
            "default_model": embedding_server.model,
        }
    )
    embedder = Embedder(config, model=f"openai:{embedding_server.model}")
    response = embedder.embed_with_route(["the cat sat on the mat", "stocks fell sharply today"])
    assert response.provider == Provider.OPENAI
    assert response.input_tokens is not None and response.input_tokens > 0
    first, second = response.vectors
    assert len(first) == len(second) == 640
    assert norm(first) == pytest.approx(1.0)
    assert first != second
    # Same text alone: the same direction (batching changes the last digits only).
    again = embedder.embed(["the cat sat on the mat"])[0]
    assert sum(a * b for a, b in zip(again, first, strict=True)) > 0.99
    assert sum(a * b for a, b in zip(again, second, strict=True)) < 0.99


async def test_llama_cpp_server_aembed(embedding_server: LocalServer) -> None:
    config = config_for(
        {
            "name": "openai",
            "base_url": embedding_server.openai_base_url,
            "default_model": embedding_server.model,
        }
    )
    vectors = await Embedder(config, model=f"openai:{embedding_server.model}").aembed(["hello"])
    assert len(vectors) == 1
    assert len(vectors[0]) == 640
