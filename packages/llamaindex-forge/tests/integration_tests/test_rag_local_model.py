"""A fully offline RAG pipeline: ForgeEmbedding (embedded GGUF, in process) builds a
VectorStoreIndex over tests/data, queried with a ForgeLLM on the same model in process.

The retrieved file is asserted, not the 270M model's prose. The same index queried through
llama-cpp-python's server is in test_rag_local_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import forge_core
import pytest
from forge_test_support import closed_port_url, config_for, embedded_in_process
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llamaindex_forge import ForgeEmbedding, ForgeLLM

pytestmark = pytest.mark.local_model

DATA = Path(__file__).resolve().parents[4] / "tests" / "data"
QUESTIONS = {
    "How do plants turn sunlight into food?": "photosynthesis.txt",
    "Why does lava come out of a mountain?": "volcanoes.txt",
    "How do you bake a loaf of bread with a starter?": "sourdough.txt",
    "How do I define a function with def and return a value?": "python_functions.txt",
}


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    documents = SimpleDirectoryReader(str(DATA), required_exts=[".txt"]).load_data()
    assert len(documents) == len(QUESTIONS)
    embed_model = ForgeEmbedding(config=config_for(embedded_in_process()))
    return VectorStoreIndex.from_documents(documents, embed_model=embed_model)


@pytest.fixture
def restore_settings() -> Iterator[None]:
    previous_llm, previous_embed = Settings._llm, Settings._embed_model
    try:
        yield
    finally:
        Settings._llm, Settings._embed_model = previous_llm, previous_embed


@pytest.mark.parametrize(("question", "expected_file"), list(QUESTIONS.items()))
def test_retriever_finds_the_file_the_question_is_about(
    index: VectorStoreIndex, question: str, expected_file: str
) -> None:
    [best] = index.as_retriever(similarity_top_k=1).retrieve(question)
    assert best.node.metadata["file_name"] == expected_file


async def test_async_query_engine_with_an_in_process_llm(index: VectorStoreIndex) -> None:
    llm = ForgeLLM(config=config_for(embedded_in_process()), max_tokens=8)
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    response = await engine.aquery("Why does lava come out of a mountain?")
    [source] = response.source_nodes
    assert source.node.metadata["file_name"] == "volcanoes.txt"


@pytest.mark.usefixtures("restore_settings")
def test_settings_drive_a_context_chat_engine(index: VectorStoreIndex) -> None:
    Settings.llm = ForgeLLM(config=config_for(embedded_in_process()), max_tokens=8)
    Settings.embed_model = index._embed_model
    engine = index.as_chat_engine(chat_mode="context", similarity_top_k=1)
    response = engine.chat("How do you bake a loaf of bread with a starter?")
    [source] = response.source_nodes
    assert source.node.metadata["file_name"] == "sourdough.txt"
    assert isinstance(response.response, str)


def test_embedding_route_is_recorded(index: VectorStoreIndex) -> None:
    embed_model = index._embed_model
    assert isinstance(embed_model, ForgeEmbedding)
    embed_model.get_query_embedding("anything")
    route = embed_model.route
    assert route is not None
    assert route.provider == forge_core.Provider.HUGGINGFACE
    assert route.attempts[-1].ok is True


def test_refused_ollama_falls_back_to_in_process_embeddings() -> None:
    embed_model = ForgeEmbedding(
        config=config_for({"name": "ollama", "base_url": closed_port_url()}, embedded_in_process())
    )
    assert embed_model.model_name == "forge"
    vectors = embed_model.get_text_embedding_batch(["one", "two", "three"])
    assert len(vectors) == 3
    assert embed_model.model_name == f"huggingface:{forge_core.EMBEDDED_MODEL}"
    route = embed_model.route
    assert route is not None
    assert [(a.provider.value, a.ok) for a in route.attempts] == [
        ("ollama", False),
        ("huggingface", True),
    ]
