"""The HTTP embedding paths on hand-written cassettes (documented formats): Ollama's
``/api/embed`` and OpenAI's ``/v1/embeddings``.

A real llama-cpp-python server for ``/v1/embeddings`` is in test_embedder_http_local_server.py;
Ollama falling back to the embedded model is in test_embedder_local.py.
"""

from __future__ import annotations

from typing import Any

import forge_core
import pytest
from forge_cassettes import embedding_cassettes
from forge_core import Embedder, FallbackFailed, Provider
from forge_test_support import config_for

TEXTS = ["the cat sat", "stocks fell"]
CANARY_KEY = "sk-forge-canary-embeddings-7a1e"


#: Each cassette answers once; retrying is the router's, tested with chat (the same code).
NO_RETRIES = {"max_retries": 0}


def ollama_config(**extra: Any) -> forge_core.ForgeConfig:
    """Ollama with ``api: native``: embeddings through ``/api/embed``."""
    return config_for(
        {"name": "ollama", "base_url": "http://127.0.0.1:11434", "api": "native", **extra},
        routing=NO_RETRIES,
    )


def openai_config() -> forge_core.ForgeConfig:
    return config_for(
        {"name": "openai", "api_key_env": "OPENAI_API_KEY", "default_model": "gpt-4o-mini"},
        routing=NO_RETRIES,
    )


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    return CANARY_KEY


# -- Ollama /api/embed ---------------------------------------------------------------------------


@embedding_cassettes.use_cassette("ollama_embed.yaml")
def test_ollama_embed_returns_one_vector_per_text() -> None:
    embedder = Embedder(ollama_config())
    response = embedder.embed_with_route(TEXTS)
    assert response.vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    assert response.provider == Provider.OLLAMA
    assert response.model == "nomic-embed-text"
    assert response.input_tokens == 7
    assert response.route.provider == Provider.OLLAMA
    assert embedder.served == "ollama:nomic-embed-text"


@embedding_cassettes.use_cassette("ollama_embed.yaml")
async def test_ollama_aembed() -> None:
    vectors = await Embedder(ollama_config()).aembed(TEXTS)
    assert vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]


@embedding_cassettes.use_cassette("ollama_embed.yaml")
def test_a_response_with_the_wrong_number_of_vectors_is_malformed() -> None:
    with pytest.raises(FallbackFailed) as caught:
        Embedder(ollama_config(), model="ollama:llama3.2").embed(TEXTS)
    [attempt] = caught.value.route.attempts
    assert attempt.error_kind == "malformed_response"
    assert "asked for 2 embeddings, got 1" in (attempt.message or "")


# -- OpenAI /v1/embeddings (cassettes) -----------------------------------------------------------


@embedding_cassettes.use_cassette("openai_embeddings.yaml")
def test_openai_embeddings_are_put_back_in_input_order(openai_key: str) -> None:
    response = Embedder(openai_config()).embed_with_route(TEXTS)
    assert response.vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    assert response.provider == Provider.OPENAI
    assert response.model == "text-embedding-3-small"
    assert response.input_tokens == 6


@embedding_cassettes.use_cassette("openai_embeddings.yaml")
def test_openai_rejected_key_is_an_auth_error_without_the_key(openai_key: str) -> None:
    with pytest.raises(FallbackFailed) as caught:
        Embedder(openai_config(), model="openai:text-embedding-3-large").embed(TEXTS)
    [attempt] = caught.value.route.attempts
    assert attempt.error_kind == "auth"
    assert "sk-forge" not in str(caught.value)
    assert openai_key not in str(caught.value)
    assert openai_key not in repr(caught.value.route)


@embedding_cassettes.use_cassette("openai_embeddings.yaml")
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
