"""Embeddings from the embedded GGUF, run by forge (llama-cpp-python, in a worker process), and
the embedding routes that fall back to it."""

from __future__ import annotations

import math

import pytest
from forge_cassettes import embedding_cassettes
from forge_core import EMBEDDED_MODEL, Embedder, HuggingFaceConfig, Provider
from forge_core.backends.local import backend as _huggingface
from forge_core.backends.local import pool as _local_pool
from forge_test_support import closed_port_url, config_for, embedded_in_process

pytestmark = pytest.mark.local_model

TEXTS = ["the cat sat", "stocks fell"]

DOCUMENTS = [
    "Photosynthesis lets green plants turn sunlight, water and carbon dioxide into sugar "
    "and oxygen in their leaves.",
    "The Python interpreter compiles source code to bytecode; functions, classes and modules "
    "organise programs.",
    "Sourdough bread is baked from flour, water and salt, leavened by a wild yeast starter.",
    "The volcano erupted, sending lava and ash down its slopes; magma rises from the mantle.",
]
QUESTIONS = {
    "How do plants make food from light?": 0,
    "How do I write a function in a programming language?": 1,
    "How is a loaf of bread made?": 2,
    "What happens when a volcano erupts?": 3,
}


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(config_for(embedded_in_process()))


def test_vectors_are_unit_length_and_one_per_text(embedder: Embedder) -> None:
    response = embedder.embed_with_route(DOCUMENTS)
    assert len(response.vectors) == len(DOCUMENTS)
    assert response.dimensions == 576  # SmolLM2-135M's hidden size
    for vector in response.vectors:
        assert math.sqrt(dot(vector, vector)) == pytest.approx(1.0, abs=1e-4)
    assert response.provider == Provider.HUGGINGFACE
    assert response.model == EMBEDDED_MODEL
    [attempt] = response.route.attempts
    assert (attempt.provider, attempt.ok) == (Provider.HUGGINGFACE, True)
    assert embedder.last_route == response.route


def test_each_question_is_closest_to_its_own_topic(embedder: Embedder) -> None:
    documents = embedder.embed(DOCUMENTS)
    questions = embedder.embed(list(QUESTIONS))
    for (question, expected), vector in zip(QUESTIONS.items(), questions, strict=True):
        scores = [dot(vector, document) for document in documents]
        assert scores.index(max(scores)) == expected, (question, scores)


async def test_aembed_matches_embed(embedder: Embedder) -> None:
    sync = embedder.embed(DOCUMENTS[:2])
    asynchronous = await embedder.aembed(DOCUMENTS[:2])
    for a, b in zip(sync, asynchronous, strict=True):
        assert a == pytest.approx(b, abs=1e-6)


def test_one_embedding_instance_per_process_in_the_pool_chat_uses(embedder: Embedder) -> None:
    embedder.embed(["warm up"])
    before = [entry for entry in _local_pool.loaded_models() if entry.purpose == "embed"]
    Embedder(config_for(embedded_in_process())).embed(["another embedder"])
    after = [entry for entry in _local_pool.loaded_models() if entry.purpose == "embed"]
    assert len(before) == 1 and after == before and after[0] is before[0]
    # The pool's stats and unload see it; by default it runs in a worker process.
    [stats] = [
        m
        for m in _huggingface.HuggingFaceBackend(HuggingFaceConfig()).stats()["models"]
        if m["purpose"] == "embed"
    ]
    assert stats["isolation"] == "process" and stats["worker_pids"] and stats["requests"] >= 2
    assert EMBEDDED_MODEL in _local_pool.unload_models()
    assert not [entry for entry in _local_pool.loaded_models() if entry.purpose == "embed"]


# -- falling back to the embedded model ----------------------------------------------------------


def refused_ollama() -> dict[str, object]:
    return {"name": "ollama", "base_url": closed_port_url()}


@embedding_cassettes.use_cassette("ollama_embed.yaml")
def test_ollama_model_not_pulled_falls_back_to_the_embedded_model() -> None:
    config = config_for(
        {"name": "ollama", "base_url": "http://127.0.0.1:11434", "api": "native"},
        embedded_in_process(),
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


def test_refused_ollama_falls_back_to_the_embedded_model_and_stays_there() -> None:
    config = config_for(refused_ollama(), embedded_in_process())
    embedder = Embedder(config)
    response = embedder.embed_with_route(["hello"])
    first, second = response.route.attempts
    assert (first.provider, first.ok, first.error_kind) == (Provider.OLLAMA, False, "unavailable")
    assert (second.provider, second.ok) == (Provider.HUGGINGFACE, True)
    assert embedder.served == f"huggingface:{EMBEDDED_MODEL}"

    # From now on Ollama is not even tried: its vectors would live in another space.
    candidates, drops = embedder.plan()
    assert [c.provider for c in candidates] == [Provider.HUGGINGFACE]
    assert drops[0].provider == Provider.OLLAMA
    assert drops[0].reason == f"this Embedder's vectors come from huggingface:{EMBEDDED_MODEL}"
    assert embedder.embed_with_route(["again"]).route.attempts[0].provider == (Provider.HUGGINGFACE)


def test_without_pinning_every_call_starts_from_the_top() -> None:
    embedder = Embedder(config_for(refused_ollama(), embedded_in_process()), pin_after_first=False)
    embedder.embed(["hello"])
    candidates, _ = embedder.plan()
    assert [c.provider for c in candidates] == [Provider.OLLAMA, Provider.HUGGINGFACE]
