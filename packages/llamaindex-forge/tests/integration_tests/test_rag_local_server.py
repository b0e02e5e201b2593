"""The offline RAG index of test_rag_local_model.py (ForgeEmbedding on the embedded GGUF, in
process) queried with a ForgeLLM on llama-cpp-python's real server.

The retrieved file is asserted, not the 270M model's prose.
"""

from __future__ import annotations

from pathlib import Path

import forge_core
import pytest
from forge_test_support import LocalServer, config_for, embedded_in_process, ollama_on
from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
from llamaindex_forge import ForgeEmbedding, ForgeLLM

pytestmark = [pytest.mark.local_model, pytest.mark.local_server]

DATA = Path(__file__).resolve().parents[4] / "tests" / "data"
#: tests/data holds one text file per topic.
FILES = 4


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    documents = SimpleDirectoryReader(str(DATA), required_exts=[".txt"]).load_data()
    assert len(documents) == FILES
    embed_model = ForgeEmbedding(config=config_for(embedded_in_process()))
    return VectorStoreIndex.from_documents(documents, embed_model=embed_model)


def test_query_engine_answers_from_the_right_file(
    index: VectorStoreIndex, local_server: LocalServer
) -> None:
    llm = ForgeLLM(config=config_for(ollama_on(local_server)), max_tokens=16)
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    response = engine.query("How do plants turn sunlight into food?")
    [source] = response.source_nodes
    assert source.node.metadata["file_name"] == "photosynthesis.txt"
    assert isinstance(response.response, str)
    assert response.response.strip()
    assert index._embed_model.model_name == f"huggingface:{forge_core.EMBEDDED_MODEL}"
