"""The public surface of llamaindex_forge."""

from __future__ import annotations

import llamaindex_forge
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.llms import LLM
from llamaindex_forge import ForgeEmbedding, ForgeLLM


def test_all_is_pinned() -> None:
    assert llamaindex_forge.__all__ == ["ForgeEmbedding", "ForgeLLM"]
    assert llamaindex_forge.ForgeLLM is ForgeLLM
    assert llamaindex_forge.ForgeEmbedding is ForgeEmbedding


def test_forge_embedding_is_a_llamaindex_embedding() -> None:
    assert BaseEmbedding in ForgeEmbedding.__mro__
    assert ForgeEmbedding.class_name() == "ForgeEmbedding"
    assert ForgeEmbedding().to_dict()["class_name"] == "ForgeEmbedding"


def test_forge_llm_is_a_llamaindex_llm() -> None:
    assert BaseLLM in ForgeLLM.__mro__
    assert LLM in ForgeLLM.__mro__
    assert isinstance(ForgeLLM(), BaseLLM)


def test_class_name() -> None:
    assert ForgeLLM.class_name() == "ForgeLLM"
    assert ForgeLLM().to_dict()["class_name"] == "ForgeLLM"
