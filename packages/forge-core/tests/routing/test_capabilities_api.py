"""`Forge.capabilities`: what the route for a model can do, from the planner, without a call."""

from __future__ import annotations

from forge_core import Forge, ModelRequirements
from forge_test_support import closed_port_url, config_for


def _forge() -> Forge:
    # Ollama first (tools, no vision by default), then Anthropic (vision, 200k context) with a
    # key given to this Forge only.
    return Forge(
        config_for(
            {"name": "ollama", "base_url": closed_port_url()},
            {"name": "anthropic", "api_key_env": "FORGE_TEST_KEY", "default_model": "claude"},
        ),
        env={"FORGE_TEST_KEY": "sk-test-capabilities"},
    )


def test_the_first_candidate_answers_when_nothing_special_is_needed() -> None:
    capabilities = _forge().capabilities()
    assert capabilities is not None
    assert capabilities.tools and not capabilities.vision


def test_a_need_the_first_candidate_lacks_moves_to_the_one_that_has_it() -> None:
    capabilities = _forge().capabilities(needs=ModelRequirements(vision=True))
    assert capabilities is not None and capabilities.vision
    assert capabilities.context_window == 200_000


def test_a_pinned_model_is_asked_about_first() -> None:
    capabilities = _forge().capabilities("anthropic:claude")
    assert capabilities is not None and capabilities.context_window == 200_000


def test_none_when_no_candidate_can_meet_the_needs() -> None:
    forge = Forge(config_for({"name": "ollama", "base_url": closed_port_url()}))
    assert forge.capabilities(needs=ModelRequirements(vision=True)) is None
    assert forge.capabilities(needs=ModelRequirements(embeddings=True)) is not None
