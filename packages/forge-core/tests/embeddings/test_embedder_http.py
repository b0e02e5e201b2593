"""The HTTP embedding paths: a real llama-cpp-python server for ``/v1/embeddings``, and
hand-written cassettes (documented formats) for Ollama's ``/api/embed`` and OpenAI itself."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import forge_core
import pytest
import vcr
from forge_core import EMBEDDED_MODEL, Embedder, FallbackFailed, Provider
from forge_test_support import LocalServer, config_for, embedded_in_process, run_local_server

CASSETTES = Path(__file__).parent / "cassettes"
TEXTS = ["the cat sat", "stocks fell"]
CANARY_KEY = "sk-forge-canary-embeddings-7a1e"


def _json_body(r1: Any, r2: Any) -> None:
    assert json.loads(r1.body or b"null") == json.loads(r2.body or b"null")


cassettes = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "json_body"],
    filter_headers=["authorization"],
)
cassettes.register_matcher("json_body", _json_body)


def ollama_config(**extra: Any) -> forge_core.ForgeConfig:
    return config_for({"name": "ollama", "base_url": "http://127.0.0.1:11434", **extra})


def openai_config() -> forge_core.ForgeConfig:
    return config_for(
        {"name": "openai", "api_key_env": "OPENAI_API_KEY", "default_model": "gpt-4o-mini"}
    )


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    return CANARY_KEY


@pytest.fixture(scope="module")
def embedding_server(embedded_model: Path) -> Iterator[LocalServer]:
    with run_local_server(embedded_model, embedding=True, n_ctx=512) as server:
        yield server


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


# -- Ollama /api/embed ---------------------------------------------------------------------------


@cassettes.use_cassette("ollama_embed.yaml")
def test_ollama_embed_returns_one_vector_per_text() -> None:
    embedder = Embedder(ollama_config())
    response = embedder.embed_with_route(TEXTS)
    assert response.vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    assert response.provider == Provider.OLLAMA
    assert response.model == "nomic-embed-text"
    assert response.input_tokens == 7
    assert response.route.provider == Provider.OLLAMA
    assert embedder.served == "ollama:nomic-embed-text"


@cassettes.use_cassette("ollama_embed.yaml")
async def test_ollama_aembed() -> None:
    vectors = await Embedder(ollama_config()).aembed(TEXTS)
    assert vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]


@pytest.mark.local_model
@cassettes.use_cassette("ollama_embed.yaml")
def test_ollama_model_not_pulled_falls_back_to_the_embedded_model() -> None:
    config = config_for(
        {"name": "ollama", "base_url": "http://127.0.0.1:11434"}, embedded_in_process()
    )
    embedder = Embedder(config, model="ollama:all-minilm")
    response = embedder.embed_with_route(TEXTS)
    first, second = response.route.attempts
    assert (first.provider, first.ok, first.error_kind) == (
        Provider.OLLAMA,
        False,
        "model_not_found",
    )
    assert "not found, try pulling it first" in (first.message or "")
    assert (second.provider, second.ok) == (Provider.HUGGINGFACE, True)
    assert response.provider == Provider.HUGGINGFACE
    assert embedder.served == f"huggingface:{EMBEDDED_MODEL}"
    assert len(response.vectors) == 2


@cassettes.use_cassette("ollama_embed.yaml")
def test_a_response_with_the_wrong_number_of_vectors_is_malformed() -> None:
    with pytest.raises(FallbackFailed) as caught:
        Embedder(ollama_config(), model="ollama:llama3.2").embed(TEXTS)
    [attempt] = caught.value.route.attempts
    assert attempt.error_kind == "malformed_response"
    assert "asked for 2 embeddings, got 1" in (attempt.message or "")


# -- OpenAI /v1/embeddings (cassettes) -----------------------------------------------------------


@cassettes.use_cassette("openai_embeddings.yaml")
def test_openai_embeddings_are_put_back_in_input_order(openai_key: str) -> None:
    response = Embedder(openai_config()).embed_with_route(TEXTS)
    assert response.vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    assert response.provider == Provider.OPENAI
    assert response.model == "text-embedding-3-small"
    assert response.input_tokens == 6


@cassettes.use_cassette("openai_embeddings.yaml")
def test_openai_rejected_key_is_an_auth_error_without_the_key(openai_key: str) -> None:
    with pytest.raises(FallbackFailed) as caught:
        Embedder(openai_config(), model="openai:text-embedding-3-large").embed(TEXTS)
    [attempt] = caught.value.route.attempts
    assert attempt.error_kind == "auth"
    assert "sk-forge" not in str(caught.value)
    assert openai_key not in str(caught.value)
    assert openai_key not in repr(caught.value.route)


@cassettes.use_cassette("openai_embeddings.yaml")
async def test_openai_rate_limit_is_reported(openai_key: str) -> None:
    with pytest.raises(FallbackFailed) as caught:
        await Embedder(openai_config(), model="openai:text-embedding-ada-002").aembed(TEXTS)
    [attempt] = caught.value.route.attempts
    assert attempt.error_kind == "rate_limited"


def test_missing_openai_key_drops_the_candidate_without_a_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(FallbackFailed) as caught:
        Embedder(openai_config()).embed(TEXTS)
    assert caught.value.route.attempts == []
    [drop] = caught.value.route.drops
    assert "OPENAI_API_KEY" in drop.reason


# -- a real OpenAI-compatible server -------------------------------------------------------------


@pytest.mark.local_server
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


@pytest.mark.local_server
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
