"""Token cost: the price table, per-call ``route.cost_usd`` and the spend in ``Forge.stats()``.

A recorded OpenAI answer (the ``openai_chat.yaml`` cassette: 19 prompt and 10 completion tokens
of ``gpt-4o-mini-2024-07-18``) is priced from the packaged table; fault servers on 127.0.0.1
stand in for a local and a cloud provider for the local share.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_server import FaultServer, ok
from forge_cassettes import CANARY_KEYS, use_cassette
from forge_core import (
    ConfigError,
    Forge,
    ForgeConfig,
    Message,
    Pricing,
    PricingConfig,
    Provider,
    load_config,
)
from forge_core.observability.pricing import DEFAULT_PRICES
from forge_test_support import config_for


@use_cassette("openai_chat.yaml")
def test_a_recorded_openai_answer_is_priced_from_the_packaged_table() -> None:
    forge = Forge(config_for({"name": "openai", "api_key_env": "OPENAI_API_KEY"}), env=CANARY_KEYS)
    answer = forge.chat(
        [Message(role="system", content="be brief"), Message(role="user", content="Say hello.")],
        max_tokens=12,
    )
    assert answer.model == "gpt-4o-mini-2024-07-18"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (19, 10)
    per_input, per_output = DEFAULT_PRICES["openai:gpt-4o-mini"]
    expected = (19 * per_input + 10 * per_output) / 1_000_000
    assert answer.route.cost_usd == pytest.approx(expected)
    assert expected == pytest.approx(8.85e-6)
    stats = forge.stats()
    assert stats["models"]["openai:gpt-4o-mini"]["spend_usd"] == pytest.approx(expected)
    assert stats["models"]["openai:gpt-4o-mini"]["input_tokens"] == 19
    assert stats["models"]["openai:gpt-4o-mini"]["output_tokens"] == 10
    assert stats["usage"] == {
        "local_tokens": 0,
        "cloud_tokens": 29,
        "local_share": 0.0,
        "spend_usd": pytest.approx(expected),
        "unpriced_tokens": 0,
    }


def test_local_answers_cost_nothing_and_make_up_the_local_share() -> None:
    with FaultServer([ok("local")]) as local, FaultServer([ok("cloud")]) as cloud:
        forge = Forge(
            config_for(
                {"name": "ollama", "base_url": local.root_url, "preferred_models": ["m"]},
                {"name": "openai", "base_url": cloud.base_url, "default_model": "gpt-4o"},
            )
        )
        served_locally = forge.chat("hi", model="ollama:m")
        served_by_cloud = forge.chat("hi", model="openai:gpt-4o")
    assert served_locally.provider is Provider.OLLAMA
    assert served_locally.route.cost_usd == 0.0
    assert served_by_cloud.route.cost_usd == pytest.approx((3 * 2.50 + 4 * 10.00) / 1e6)
    usage = forge.stats()["usage"]
    assert usage["local_tokens"] == 7 and usage["cloud_tokens"] == 7
    assert usage["local_share"] == 0.5
    assert usage["spend_usd"] == pytest.approx(served_by_cloud.route.cost_usd)


def test_a_model_without_a_price_costs_none_and_its_tokens_are_unpriced() -> None:
    with FaultServer([ok("hi")]) as server:
        forge = Forge(
            config_for({"name": "openai", "base_url": server.base_url, "default_model": "m"})
        )
        answer = forge.chat("hi")
    assert answer.route.cost_usd is None
    assert forge.stats()["usage"]["unpriced_tokens"] == 7
    assert forge.stats()["usage"]["spend_usd"] == 0.0


def test_the_config_prices_a_model_and_wins_over_the_defaults() -> None:
    config = ForgeConfig.model_validate(
        {
            "pricing": {
                "models": {
                    "openai:gpt-4o-mini": {"input": 1.0, "output": 2.0},
                    "my-model": {"input": 0.5},
                    "ollama:big": {"input": 0.1, "output": 0.1},
                }
            }
        }
    )
    pricing = Pricing(config.pricing)
    assert pricing.cost(Provider.OPENAI, "gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == 3.0
    assert pricing.cost(Provider.OPENROUTER, "my-model", 2_000_000, 5) == 1.0
    assert pricing.price(Provider.OLLAMA, "big") == (0.1, 0.1)
    assert pricing.price(Provider.OLLAMA, "small") == (0.0, 0.0)
    assert pricing.price(Provider.HUGGINGFACE, "smollm2-135m") == (0.0, 0.0)


def test_packaged_prices_match_dated_and_latest_model_names() -> None:
    pricing = Pricing()
    assert pricing.price(Provider.OPENAI, "gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert pricing.price(Provider.ANTHROPIC, "claude-3-5-haiku-latest") == (0.80, 4.00)
    assert pricing.price(Provider.ANTHROPIC, "claude-3-5-haiku-20241022") == (0.80, 4.00)
    assert pricing.price(Provider.ANTHROPIC, "claude-sonnet-4-20250514") == (3.00, 15.00)
    assert pricing.price(Provider.OPENAI, "gpt-9") is None
    # A price is per provider: the same name elsewhere is another offer.
    assert pricing.price(Provider.OPENROUTER, "gpt-4o-mini") is None
    assert Pricing(PricingConfig(defaults=False)).price(Provider.OPENAI, "gpt-4o-mini") is None


def test_every_default_model_of_a_cloud_provider_has_a_price() -> None:
    config = ForgeConfig()
    pricing = Pricing(config.pricing)
    cloud = config.providers.cloud
    for provider, section in (
        (Provider.OPENAI, cloud.openai),
        (Provider.ANTHROPIC, cloud.anthropic),
        (Provider.OPENROUTER, cloud.openrouter),
    ):
        assert pricing.price(provider, section.default_model) is not None, provider


def test_a_bad_price_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "forge.yaml"
    path.write_text("pricing:\n  models:\n    'openai:gpt-4o':\n      input: -1\n")
    with pytest.raises(ConfigError, match=r"pricing\.models\.openai:gpt-4o\.input"):
        load_config(path)
