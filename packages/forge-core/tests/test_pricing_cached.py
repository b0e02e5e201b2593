"""Cached input tokens are priced at the cached-input price (``cached_input_per_million``, or
the packaged one), not the input price; a model without one prices them as input."""

from __future__ import annotations

import pytest
from forge_core import Forge, ModelPrice, Pricing, PricingConfig, Provider, Usage
from forge_core.observability.pricing import DEFAULT_CACHED_INPUT_PRICES, DEFAULT_PRICES
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for


def test_cached_tokens_cost_the_cached_input_price() -> None:
    pricing = Pricing()
    per_input, per_output = DEFAULT_PRICES["openai:gpt-4o-mini"]
    per_cached = DEFAULT_CACHED_INPUT_PRICES["openai:gpt-4o-mini"]
    cost = pricing.cost(Provider.OPENAI, "gpt-4o-mini", 1000, 100, cached_input_tokens=800)
    assert cost == pytest.approx((200 * per_input + 800 * per_cached + 100 * per_output) / 1e6)
    assert pricing.cached_input_price(Provider.OPENAI, "gpt-4o-mini-2024-07-18") == per_cached


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
