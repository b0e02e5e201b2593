"""ForgeLLM and ForgeEmbedding instances with the same options share one `forge_core.Forge`.

No model is called: the configs point at a port nothing listens on and only the `Forge`
objects are compared.
"""

from __future__ import annotations

from collections.abc import Iterator

import forge_core
import pytest
from forge_core.testing import ScriptedBackend
from forge_test_support import closed_port_url, config_for
from llamaindex_forge import ForgeEmbedding, ForgeLLM


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forge_core.clear_shared_forges()
    yield
    forge_core.clear_shared_forges()


def _config() -> forge_core.ForgeConfig:
    return config_for({"name": "ollama", "base_url": closed_port_url()})


def test_two_llms_with_the_same_options_share_one_forge() -> None:
    config = _config()
    first = ForgeLLM(config=config, local_only=True, timeout=5)
    second = ForgeLLM(config=config, local_only=True, timeout=5, max_tokens=16)
    assert first.forge is second.forge
    assert first.forge is forge_core.shared_forge(config, overrides=first.forge_overrides())


def test_different_options_get_different_forges() -> None:
    config = _config()
    assert ForgeLLM(config=config, local_only=True).forge is not ForgeLLM(config=config).forge


def test_embeddings_share_the_llms_forge_but_not_its_pinning() -> None:
    config = _config()
    llm = ForgeLLM(config=config, local_first=True)
    first = ForgeEmbedding(config=config, local_first=True)
    second = ForgeEmbedding(config=config, local_first=True)
    assert first.embedder.forge is llm.forge
    assert second.embedder.forge is llm.forge
    # Each embedding model pins its own vector space.
    assert first.embedder is not second.embedder


def test_the_same_backends_share_one_forge_and_other_backends_do_not() -> None:
    config = _config()
    backend = ScriptedBackend(provider="ollama")
    llm = ForgeLLM(config=config, backends={"ollama": backend})
    embedding = ForgeEmbedding(config=config, backends={"ollama": backend})
    assert embedding.embedder.forge is llm.forge
    assert llm.forge.router.backends == {"ollama": backend}
    other = ForgeLLM(config=config, backends={"ollama": ScriptedBackend(provider="ollama")})
    assert other.forge is not llm.forge
    assert ForgeLLM(config=config).forge is not llm.forge
