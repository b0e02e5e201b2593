"""``ForgeChat.profile`` (LangChain's `ModelProfile`) for a pinned model comes from forge's
capability table for the deployment that would serve it first; without a model it is None."""

from __future__ import annotations

import pytest
from forge_core import Capabilities, Forge
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from langchain_forge import ForgeChat

CONFIG = config_for({"name": "ollama"}, {"name": "openai"}, {"name": "anthropic"})


def test_a_pinned_cloud_model_has_the_tables_profile() -> None:
    profile = ForgeChat(model="anthropic:claude-sonnet-4", config=CONFIG).profile
    assert profile is not None
    assert profile["tool_calling"] and profile["tool_choice"] and profile["structured_output"]
    assert profile["image_inputs"] is True
    assert profile["max_input_tokens"] == 200_000
    assert (profile["text_inputs"], profile["text_outputs"]) == (True, True)


def test_an_ollama_model_has_the_defaults_until_forge_knows_more() -> None:
    profile = ForgeChat(model="ollama:llama3.2", config=CONFIG).profile
    assert profile is not None
    assert profile["tool_calling"] is True
    assert profile["tool_choice"] is False  # Ollama has no tool_choice
    assert profile["image_inputs"] is False
    assert "max_input_tokens" not in profile  # unknown before /api/show, never guessed


def test_a_scripted_backend_reports_its_own_capabilities() -> None:
    seeing = Capabilities(tools=True, vision=True, context_window=32_768)
    backend = ScriptedBackend(Reply("ok"), model="m", capabilities=seeing)
    config = config_for({"name": "openai"})
    profile = ForgeChat(model="openai:m", config=config, backends={"openai": backend}).profile
    assert profile is not None
    assert (profile["tool_calling"], profile["image_inputs"]) == (True, True)
    assert profile["structured_output"] is False
    assert profile["max_input_tokens"] == 32_768


def test_the_profile_is_the_pinned_models_even_when_it_cannot_serve_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FORGE_TEST_UNSET_KEY", raising=False)
    config = config_for(
        {"name": "ollama"}, {"name": "openai", "api_key_env": "FORGE_TEST_UNSET_KEY"}
    )
    forge = Forge(config)
    # A route would drop openai (no key) and start at ollama; the profile stays openai's.
    assert forge.capabilities("openai:gpt-4o-mini") == forge.model_capabilities("ollama:m")
    forge.close()
    profile = ForgeChat(model="openai:gpt-4o-mini", config=config).profile
    assert profile is not None and profile["image_inputs"] is True


def test_an_unpinned_forgechat_has_no_profile() -> None:
    assert ForgeChat(model=None, config=CONFIG).profile is None


def test_a_given_profile_is_kept() -> None:
    chat = ForgeChat(model="ollama:llama3.2", config=CONFIG, profile={"max_input_tokens": 8192})
    assert chat.profile == {"max_input_tokens": 8192}
