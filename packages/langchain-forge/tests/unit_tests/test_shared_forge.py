"""ForgeChat instances with the same options share one `forge_core.Forge` (no model is called).

LangChain may build a chat model per request; sharing keeps forge.yaml read once and the HTTP
pools, breakers and health of one `Forge` alive across those instances.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import forge_core
import pytest
from forge_core.testing import ScriptedBackend
from forge_test_support import closed_port_url, config_for
from langchain_forge import ForgeChat

SECRET = "sk-test-langchain-shared-7d1e"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forge_core.clear_shared_forges()
    yield
    forge_core.clear_shared_forges()


def _config() -> forge_core.ForgeConfig:
    return config_for({"name": "ollama", "base_url": closed_port_url()})


def test_two_instances_with_the_same_options_share_one_forge() -> None:
    config = _config()
    first = ForgeChat(config=config, local_only=True, timeout=5)
    second = ForgeChat(config=config, local_only=True, timeout=5, temperature=0.2)
    assert first.shared_forge() is second.shared_forge()
    assert first.shared_forge() is forge_core.shared_forge(
        config, overrides=first.forge_overrides()
    )


def test_a_config_file_is_shared_by_path(tmp_path: Path) -> None:
    path = tmp_path / "forge.yaml"
    path.write_text(
        f"providers:\n  local:\n    ollama:\n      base_url: {closed_port_url()}\n",
        encoding="utf-8",
    )
    assert ForgeChat(config=path).shared_forge() is ForgeChat(config=str(path)).shared_forge()


def test_different_routing_options_get_different_forges() -> None:
    config = _config()
    assert (
        ForgeChat(config=config, local_only=True).shared_forge()
        is not ForgeChat(config=config).shared_forge()
    )


def test_the_same_api_key_shares_and_another_key_does_not() -> None:
    config = config_for({"name": "openai", "base_url": closed_port_url() + "/v1"})
    first = ForgeChat(config=config, model="openai:gpt-x", api_key=SECRET)
    same = ForgeChat(config=config, model="openai:gpt-x", api_key=SECRET)
    other = ForgeChat(config=config, model="openai:gpt-x", api_key=SECRET + "2")
    assert first.shared_forge() is same.shared_forge()
    assert first.shared_forge() is not other.shared_forge()


def test_the_same_backends_share_one_forge_and_other_backends_do_not() -> None:
    config = _config()
    backend = ScriptedBackend(provider="ollama")
    first = ForgeChat(config=config, backends={"ollama": backend})
    same = ForgeChat(config=config, backends={"ollama": backend}, temperature=0.2)
    other = ForgeChat(config=config, backends={"ollama": ScriptedBackend(provider="ollama")})
    forge = first.shared_forge()
    assert forge is same.shared_forge()
    assert forge is not other.shared_forge()
    assert forge is not ForgeChat(config=config).shared_forge()
    assert forge.router.backends == {"ollama": backend}
    # Giving an instance other backends gives it another Forge, over them.
    replacement = ScriptedBackend(provider="ollama")
    first.backends = {"ollama": replacement}
    assert first.shared_forge() is not forge
    assert first.shared_forge().router.backends == {"ollama": replacement}
