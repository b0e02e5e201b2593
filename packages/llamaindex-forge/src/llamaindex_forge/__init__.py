"""llamaindex-forge: `ForgeLLM`, a LlamaIndex LLM routed by forge (local first, cloud fallback).

Every routing decision (which provider, which model, fallback) is made by `forge_core.Forge`;
`ForgeLLM` converts LlamaIndex messages to forge's and forge's answers back.
"""

from llamaindex_forge.base import ForgeLLM

__all__ = ["ForgeLLM"]
