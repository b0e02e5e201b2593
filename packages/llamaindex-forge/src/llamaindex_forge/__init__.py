"""llamaindex-forge: LlamaIndex's LLM and embedding model, routed by forge (local first).

Every routing decision (which provider, which model, fallback) is made by forge-core:
`ForgeLLM` converts LlamaIndex messages to `forge_core.Forge`'s and its answers back;
`ForgeEmbedding` hands texts to `forge_core.Embedder`.
"""

from llamaindex_forge.base import ForgeLLM
from llamaindex_forge.embeddings import ForgeEmbedding

__all__ = ["ForgeEmbedding", "ForgeLLM"]
