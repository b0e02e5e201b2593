"""The request span carries the usage details the provider reported, under the semantic
conventions' (experimental) names, and nothing for a detail that is 0."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from forge_core import Forge, Usage
from forge_core.testing import Reply, ScriptedBackend
from forge_test_support import config_for
from otel_support import Collected, in_memory_telemetry

DETAILS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
)


@pytest.fixture
def otel() -> Iterator[Collected]:
    with in_memory_telemetry() as collected:
        yield collected


def _root_attributes(otel: Collected, usage: Usage, *, stream: bool) -> dict[str, Any]:
    backend = ScriptedBackend(Reply("hi", usage=usage), model="gpt-4o-mini")
    forge = Forge(config_for({"name": "openai"}), backends={"openai": backend})
    if stream:
        list(forge.stream("hello"))
    else:
        forge.chat("hello")
    (root,) = otel.roots()
    return dict(root.attributes or {})


@pytest.mark.parametrize("stream", [False, True])
def test_the_span_has_the_cache_and_reasoning_counts(otel: Collected, stream: bool) -> None:
    usage = Usage(
        input_tokens=100,
        output_tokens=40,
        cached_input_tokens=80,
        cache_creation_input_tokens=10,
        reasoning_tokens=30,
    )
    attributes = _root_attributes(otel, usage, stream=stream)
    assert [attributes[name] for name in DETAILS] == [80, 10, 30]
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (
        100,
        40,
    )


def test_no_details_no_attributes(otel: Collected) -> None:
    attributes = _root_attributes(otel, Usage(input_tokens=3, output_tokens=1), stream=False)
    assert not set(DETAILS) & set(attributes)
