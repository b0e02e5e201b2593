"""Embeddings from the embedded GGUF, run by forge (llama-cpp-python, in a worker process)."""

from __future__ import annotations

import math

import pytest
from forge_core import EMBEDDED_MODEL, Embedder, HuggingFaceConfig, Provider
from forge_core.providers import _huggingface
from forge_test_support import config_for, embedded_in_process

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


@pytest.mark.local_model
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


@pytest.mark.local_model
def test_each_question_is_closest_to_its_own_topic(embedder: Embedder) -> None:
    documents = embedder.embed(DOCUMENTS)
    questions = embedder.embed(list(QUESTIONS))
    for (question, expected), vector in zip(QUESTIONS.items(), questions, strict=True):
        scores = [dot(vector, document) for document in documents]
        assert scores.index(max(scores)) == expected, (question, scores)


@pytest.mark.local_model
async def test_aembed_matches_embed(embedder: Embedder) -> None:
    sync = embedder.embed(DOCUMENTS[:2])
    asynchronous = await embedder.aembed(DOCUMENTS[:2])
    for a, b in zip(sync, asynchronous, strict=True):
        assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.local_model
def test_one_embedding_instance_per_process_in_the_pool_chat_uses(embedder: Embedder) -> None:
    embedder.embed(["warm up"])
    before = [entry for entry in _huggingface._loaded.values() if entry.purpose == "embed"]
    Embedder(config_for(embedded_in_process())).embed(["another embedder"])
    after = [entry for entry in _huggingface._loaded.values() if entry.purpose == "embed"]
    assert len(before) == 1 and after == before and after[0] is before[0]
    # The pool's stats and unload see it; by default it runs in a worker process.
    [stats] = [
        m
        for m in _huggingface.HuggingFaceBackend(HuggingFaceConfig()).stats()["models"]
        if m["purpose"] == "embed"
    ]
    assert stats["isolation"] == "process" and stats["worker_pids"] and stats["requests"] >= 2
    assert EMBEDDED_MODEL in _huggingface.unload_models()
    assert not [entry for entry in _huggingface._loaded.values() if entry.purpose == "embed"]


def test_empty_batch_makes_no_call() -> None:
    embedder = Embedder(config_for(embedded_in_process()))
    assert embedder.embed([]) == []
    assert embedder.last_route is None
    assert embedder.served is None


def test_a_single_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="list of texts"):
        Embedder(config_for(embedded_in_process())).embed("not a list")
