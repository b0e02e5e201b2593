"""LangChain integration for forge: `ForgeChat`, a chat model routed local-first by forge."""

from langchain_forge.chat_models import ForgeChat

__all__ = ["ForgeChat"]
