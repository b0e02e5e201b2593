"""LangChain integration for forge: `ForgeChat` (chat) and `ForgeEmbeddings` (embeddings),
both routed local-first by forge."""

from langchain_forge.chat_models import ForgeChat
from langchain_forge.embeddings import ForgeEmbeddings

__all__ = ["ForgeChat", "ForgeEmbeddings"]
