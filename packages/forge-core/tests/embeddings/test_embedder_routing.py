"""How `Embedder` picks, drops, pins and falls back between embedding providers."""

from __future__ import annotations

import pytest
from forge_core import Embedder, FallbackFailed, Forge, ForgeConfig, Provider
from forge_core.testing import ScriptedBackend
from forge_test_support import closed_port_url, config_for, embedded_in_process


def refused_ollama() -> dict[str, object]:
    return {"name": "ollama", "base_url": closed_port_url()}


def test_providers_without_an_embeddings_api_are_dropped_with_the_reason() -> None:
    config = ForgeConfig.model_validate(
        {"providers": {"fallback": {"order": ["anthropic", "openrouter", "ollama"]}}}
    )
    candidates, drops = Embedder(config).plan()
    assert [(c.provider, c.model) for c in candidates] == [(Provider.OLLAMA, "nomic-embed-text")]
    reasons = {drop.provider: drop.reason for drop in drops}
    assert reasons[Provider.ANTHROPIC] == "anthropic has no embeddings API"
    assert reasons[Provider.OPENROUTER] == "lacks embeddings"


def _scripted(config: ForgeConfig, *names: str) -> Forge:
    """A `Forge` over ``config`` whose ``names`` deployments are scripted backends (planning
    needs no model file, extra or server)."""
    return Forge(config, backends={name: ScriptedBackend(provider=name) for name in names})


def test_local_first_orders_local_providers_first() -> None:
    config = ForgeConfig.model_validate(
        {
            "providers": {
                "fallback": {"order": ["openai", "huggingface", "ollama"]},
                "cloud": {"openai": {"api_key_env": None}},
            },
            "model_preferences": {"local_first": True},
        }
    )
    forge = _scripted(config, "openai", "huggingface", "ollama")
    candidates, _ = Embedder(forge=forge).plan()
    assert [c.provider for c in candidates] == [
        Provider.HUGGINGFACE,
        Provider.OLLAMA,
        Provider.OPENAI,
    ]


def test_local_only_drops_cloud_providers() -> None:
    config = config_for(
        {"name": "openai", "base_url": closed_port_url(), "default_model": "m"},
        embedded_in_process(),
        model_preferences={"local_only": True},
    )
    candidates, drops = Embedder(forge=_scripted(config, "openai", "huggingface")).plan()
    assert [c.provider for c in candidates] == [Provider.HUGGINGFACE]
    assert [(d.provider, d.reason) for d in drops] == [
        (Provider.OPENAI, "local_only: cloud not allowed")
    ]


def test_model_pins_the_first_candidate_and_models_set_the_others() -> None:
    config = config_for(refused_ollama(), embedded_in_process())
    embedder = Embedder(
        forge=_scripted(config, "ollama", "huggingface"),
        model="huggingface:gemma-3-270m",
        models={"ollama": "mxbai-embed-large"},
    )
    candidates, _ = embedder.plan()
    assert [(c.provider, c.model) for c in candidates] == [
        (Provider.HUGGINGFACE, "gemma-3-270m"),
        (Provider.OLLAMA, "mxbai-embed-large"),
    ]


def test_a_bare_model_name_goes_to_the_first_provider() -> None:
    candidates, _ = Embedder(config_for(refused_ollama()), model="all-minilm").plan()
    assert [(c.provider, c.model) for c in candidates] == [(Provider.OLLAMA, "all-minilm")]


def test_disabled_fallback_keeps_only_the_first_candidate() -> None:
    config = config_for(
        refused_ollama(), embedded_in_process(), providers={"fallback": {"enabled": False}}
    )
    candidates, _ = Embedder(config).plan()
    assert [c.provider for c in candidates] == [Provider.OLLAMA]


def test_a_missing_local_model_is_dropped_before_any_call() -> None:
    config = config_for(embedded_in_process(models=[{"name": "no-such-model"}]))
    with pytest.raises(FallbackFailed) as caught:
        Embedder(config, model="huggingface:no-such-model").embed(["x"])
    assert caught.value.route.attempts == []
    [drop] = caught.value.route.drops
    assert "no-such-model" in drop.reason


def test_every_failure_is_listed_in_the_error() -> None:
    config = config_for(
        refused_ollama(), {"name": "openai", "base_url": closed_port_url(), "default_model": "m"}
    )
    with pytest.raises(FallbackFailed) as caught:
        Embedder(config).embed(["x"])
    message = str(caught.value)
    assert "ollama:nomic-embed-text -> unavailable" in message
    assert "openai:text-embedding-3-small -> unavailable" in message
    assert "connection refused" in message
    assert [a.provider for a in caught.value.route.attempts] == [
        Provider.OLLAMA,
        Provider.OPENAI,
    ]


def test_empty_batch_makes_no_call() -> None:
    embedder = Embedder(config_for(embedded_in_process()))
    assert embedder.embed([]) == []
    assert embedder.last_route is None
    assert embedder.served is None


def test_a_single_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="list of texts"):
        Embedder(config_for(embedded_in_process())).embed("not a list")
