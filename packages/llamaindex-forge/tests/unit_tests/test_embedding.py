"""ForgeEmbedding's routing, without a model call.

The embeddings themselves (the embedded GGUF, in process) are in
integration_tests/test_rag_local_model.py.
"""

from __future__ import annotations

import forge_core
import pytest
from forge_test_support import closed_port_url, config_for
from llamaindex_forge import ForgeEmbedding


def test_local_only_never_sends_texts_to_the_cloud() -> None:
    embed_model = ForgeEmbedding(
        config=config_for({"name": "openai", "base_url": closed_port_url(), "default_model": "m"}),
        local_only=True,
    )
    with pytest.raises(forge_core.FallbackFailed) as caught:
        embed_model.get_query_embedding("private text")
    assert caught.value.route.attempts == []
    assert caught.value.route.drops[0].reason == "local_only: cloud not allowed"
