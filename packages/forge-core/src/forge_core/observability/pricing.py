"""What a call cost: a price table per model, with packaged defaults for forge's cloud models.

Prices are US dollars per million tokens, input and output apart, as the providers list them;
input tokens read from a prompt cache have their own price (``cached_input_per_million``;
without one, the input price), and so have input tokens written to one
(``cache_creation_input_per_million``, Anthropic's cache writes; without one, the input price).
A model that runs on this machine (``ollama``, ``huggingface``) costs 0 unless the ``pricing``
section names it. A cloud model without a price costs None
(unknown), never a guess: `Forge.stats` counts its tokens as unpriced.

Lookup, first match wins: the configured ``provider:model``, the configured bare model name,
the packaged ``provider:model``; each is tried with the model as served (``gpt-4o-mini-2024-07-18``)
and then without a date or ``-latest`` suffix (``gpt-4o-mini``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from forge_core.config.schema import ModelPrice, PricingConfig
from forge_core.types import Provider

__all__ = [
    "DEFAULT_CACHED_INPUT_PRICES",
    "DEFAULT_CACHE_CREATION_PRICES",
    "DEFAULT_PRICES",
    "PRICES_AS_OF",
    "Pricing",
]

#: When the packaged prices were copied from the providers' price pages.
PRICES_AS_OF = "2025-06"

#: USD per million tokens (input, output) for the cloud models forge names in its defaults,
#: docs and tests. The ``pricing`` config section overrides or extends these.
DEFAULT_PRICES: Mapping[str, tuple[float, float]] = {
    "openai:gpt-4o-mini": (0.15, 0.60),
    "openai:gpt-4o": (2.50, 10.00),
    "openai:gpt-3.5-turbo": (0.50, 1.50),
    "openai:text-embedding-3-small": (0.02, 0.0),
    "openai:text-embedding-3-large": (0.13, 0.0),
    "openai:text-embedding-ada-002": (0.10, 0.0),
    "anthropic:claude-3-5-haiku": (0.80, 4.00),
    "anthropic:claude-sonnet-4": (3.00, 15.00),
    "openrouter:meta-llama/llama-3.1-8b-instruct": (0.02, 0.03),
    "openrouter:openai/gpt-4o-mini": (0.15, 0.60),
}

#: USD per million cached input tokens (a prompt-cache read) where it differs from the input
#: price of `DEFAULT_PRICES`.
DEFAULT_CACHED_INPUT_PRICES: Mapping[str, float] = {
    "openai:gpt-4o-mini": 0.075,
    "openai:gpt-4o": 1.25,
    "anthropic:claude-3-5-haiku": 0.08,
    "anthropic:claude-sonnet-4": 0.30,
    "openrouter:openai/gpt-4o-mini": 0.075,
}

#: USD per million input tokens written to the provider's prompt cache where it differs from
#: the input price of `DEFAULT_PRICES`: Anthropic bills a 5-minute cache write at 1.25 times
#: the input price (OpenAI caches without a write charge).
DEFAULT_CACHE_CREATION_PRICES: Mapping[str, float] = {
    "anthropic:claude-3-5-haiku": 1.00,
    "anthropic:claude-sonnet-4": 3.75,
}

#: A price: USD per million (input, output, cached input, cache-creation input) tokens.
_Price = tuple[float, float, float, float]

# A trailing release date (-2024-07-18, -20241022) or -latest: the same model's price.
_VERSION_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def _unversioned(model: str) -> str:
    return _VERSION_SUFFIX.sub("", model)


class Pricing:
    """The price table of one `ForgeConfig` (``pricing``), and per-call cost from it."""

    def __init__(self, config: PricingConfig | None = None) -> None:
        config = config or PricingConfig()
        table: dict[str, _Price] = (
            {
                key: (
                    input,
                    output,
                    DEFAULT_CACHED_INPUT_PRICES.get(key, input),
                    DEFAULT_CACHE_CREATION_PRICES.get(key, input),
                )
                for key, (input, output) in DEFAULT_PRICES.items()
            }
            if config.defaults
            else {}
        )
        configured: dict[str, _Price] = {
            key: _price_of(price) for key, price in config.models.items()
        }
        self._configured = configured
        self._packaged = table
        # Cached per instance: the same few models are priced on every call.
        self._lookup = lru_cache(maxsize=256)(self._find)

    def price(
        self,
        provider: Provider,
        model: str,
        *,
        deployment: str | None = None,
        local: bool | None = None,
    ) -> tuple[float, float] | None:
        """USD per million (input, output) tokens of ``model`` on ``provider``; None unknown.

        A ``deployment:model`` entry wins over ``provider:model``; ``local`` (default: the
        provider kind's) makes an unpriced model free.
        """
        price = self._lookup(provider, model, deployment, local)
        return price[:2] if price is not None else None

    def cache_prices(
        self,
        provider: Provider,
        model: str,
        *,
        deployment: str | None = None,
        local: bool | None = None,
    ) -> tuple[float, float] | None:
        """USD per million input tokens of ``model`` (read from, written to) the provider's
        prompt cache: each its input price unless the table has its own; None unknown."""
        price = self._lookup(provider, model, deployment, local)
        return price[2:] if price is not None else None

    def cost(
        self,
        provider: Provider,
        model: str,
        input_tokens: int,
        output_tokens: int,
        *,
        cached_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        deployment: str | None = None,
        local: bool | None = None,
    ) -> float | None:
        """What ``input_tokens`` and ``output_tokens`` of ``model`` cost, in USD (None when
        the model has no price; 0 for a local model without one). ``cached_input_tokens``
        and ``cache_creation_input_tokens``, parts of ``input_tokens``, are priced at the
        cached-input and cache-creation prices."""
        price = self._lookup(provider, model, deployment, local)
        if price is None:
            return None
        per_input, per_output, per_cached, per_creation = price
        total = input_tokens * per_input + output_tokens * per_output
        if cached_input_tokens:
            total -= cached_input_tokens * (per_input - per_cached)
        if cache_creation_input_tokens:
            total += cache_creation_input_tokens * (per_creation - per_input)
        return round(total / 1_000_000, 12)

    def _find(
        self, provider: Provider, model: str, deployment: str | None, local: bool | None
    ) -> _Price | None:
        names = [model]
        bare = _unversioned(model)
        if bare != model:
            names.append(bare)
        prefixes = [provider.value] if deployment in (None, provider.value) else [deployment]
        for prefix in prefixes:
            for name in names:
                key = f"{prefix}:{name}"
                if key in self._configured:
                    return self._configured[key]
        for name in names:
            if name in self._configured:
                return self._configured[name]
        if provider.is_local if local is None else local:
            return (0.0, 0.0, 0.0, 0.0)
        for name in names:
            key = f"{provider.value}:{name}"
            if key in self._packaged:
                return self._packaged[key]
        return None


def _price_of(price: ModelPrice) -> _Price:
    cached = price.cached_input_per_million
    creation = price.cache_creation_input_per_million
    return (
        price.input,
        price.output,
        price.input if cached is None else cached,
        price.input if creation is None else creation,
    )
