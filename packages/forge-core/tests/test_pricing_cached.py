"""Cached input tokens are priced at the cached-input price and tokens written to the cache at
the cache-creation price (configured, or the packaged one), not the input price; a model
without one prices them as input."""

from __future__ import annotations

import pytest
from forge_core import Forge, ModelPrice, Pricing, PricingConfig, Provider, Usage
from forge_core.observability.pricing import (
    DEFAULT_CACHE_CREATION_PRICES,
    DEFAULT_CACHED_INPUT_PRICES,
    DEFAULT_PRICES,
)
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for


def test_cached_tokens_cost_the_cached_input_price() -> None:
    pricing = Pricing()
    per_input, per_output = DEFAULT_PRICES["openai:gpt-4o-mini"]
    per_cached = DEFAULT_CACHED_INPUT_PRICES["openai:gpt-4o-mini"]
    cost = pricing.cost(Provider.OPENAI, "gpt-4o-mini", 1000, 100, cached_input_tokens=800)
    assert cost == pytest.approx((200 * per_input + 800 * per_cached + 100 * per_output) / 1e6)
    assert pricing.cache_prices(Provider.OPENAI, "gpt-4o-mini-2024-07-18") == (
        per_cached,
        per_input,
    )


def test_a_configured_cached_price_wins_and_its_default_is_the_input_price() -> None:
    pricing = Pricing(
        PricingConfig(
            models={
                "mine": ModelPrice(input=2.0, output=4.0, cached_input_per_million=0.5),
                "plain": ModelPrice(input=2.0, output=4.0),
            }
        )
    )
    assert pricing.cost(Provider.OPENAI, "mine", 10, 0, cached_input_tokens=10) == pytest.approx(
        5e-6
    )
    assert pricing.cost(Provider.OPENAI, "plain", 10, 0, cached_input_tokens=10) == pytest.approx(
        2e-5
    )
    assert pricing.price(Provider.OPENAI, "mine") == (2.0, 4.0)


def test_route_cost_prices_a_cached_prompt_lower() -> None:
    usage = Usage(input_tokens=1000, output_tokens=10, cached_input_tokens=1000)
    backend = ScriptedBackend(Reply("hi", usage=usage), model="gpt-4o-mini")
    forge = Forge(config_for({"name": "openai"}), backends={"openai": backend})
    answer = forge.chat("hello")
    per_cached = DEFAULT_CACHED_INPUT_PRICES["openai:gpt-4o-mini"]
    per_output = DEFAULT_PRICES["openai:gpt-4o-mini"][1]
    assert answer.route.cost_usd == pytest.approx((1000 * per_cached + 10 * per_output) / 1e6)


def test_cache_writes_cost_the_cache_creation_price() -> None:
    pricing = Pricing()
    per_input, per_output = DEFAULT_PRICES["anthropic:claude-sonnet-4"]
    per_written = DEFAULT_CACHE_CREATION_PRICES["anthropic:claude-sonnet-4"]
    # Anthropic's 5-minute cache write is 1.25x its input price.
    assert per_written == pytest.approx(1.25 * per_input)
    cost = pricing.cost(
        Provider.ANTHROPIC,
        "claude-sonnet-4-20250514",
        1000,
        100,
        cache_creation_input_tokens=600,
    )
    assert cost == pytest.approx((400 * per_input + 600 * per_written + 100 * per_output) / 1e6)
    assert pricing.cache_prices(Provider.ANTHROPIC, "claude-sonnet-4")[1] == per_written


def test_every_packaged_anthropic_model_has_a_cache_write_price() -> None:
    anthropic = [key for key in DEFAULT_PRICES if key.startswith("anthropic:")]
    for key in anthropic:
        assert DEFAULT_CACHE_CREATION_PRICES[key] == pytest.approx(1.25 * DEFAULT_PRICES[key][0])


def test_a_configured_cache_creation_price_wins_and_its_default_is_the_input_price() -> None:
    pricing = Pricing(
        PricingConfig(
            models={
                "mine": ModelPrice(input=2.0, output=4.0, cache_creation_input_per_million=3.0),
                "plain": ModelPrice(input=2.0, output=4.0),
            }
        )
    )
    written = {"cache_creation_input_tokens": 10}
    assert pricing.cost(Provider.ANTHROPIC, "mine", 10, 0, **written) == pytest.approx(3e-5)
    assert pricing.cost(Provider.ANTHROPIC, "plain", 10, 0, **written) == pytest.approx(2e-5)
    # OpenAI bills no cache writes: its packaged models write at the input price.
    assert (
        pricing.cache_prices(Provider.OPENAI, "gpt-4o-mini")[1]
        == (DEFAULT_PRICES["openai:gpt-4o-mini"][0])
    )


def test_route_cost_prices_cache_reads_and_writes_apart() -> None:
    usage = Usage(
        input_tokens=1000,
        output_tokens=10,
        cached_input_tokens=300,
        cache_creation_input_tokens=500,
    )
    backend = ScriptedBackend(Reply("hi", usage=usage), model="claude-3-5-haiku-20241022")
    forge = Forge(config_for({"name": "anthropic"}), backends={"anthropic": backend})
    answer = forge.chat("hello")
    per_input, per_output = DEFAULT_PRICES["anthropic:claude-3-5-haiku"]
    per_cached = DEFAULT_CACHED_INPUT_PRICES["anthropic:claude-3-5-haiku"]
    per_written = DEFAULT_CACHE_CREATION_PRICES["anthropic:claude-3-5-haiku"]
    expected = 200 * per_input + 300 * per_cached + 500 * per_written + 10 * per_output
    assert answer.route.cost_usd == pytest.approx(expected / 1e6)
