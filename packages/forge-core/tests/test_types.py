from __future__ import annotations

import pytest
from forge_core import ModelId, Provider, RouteTrail
from forge_core.types import Attempt, Drop


@pytest.mark.parametrize(
    ("text", "provider", "model"),
    [
        ("ollama:llama3.1:8b", Provider.OLLAMA, "llama3.1:8b"),
        ("openai:gpt-4o-mini", Provider.OPENAI, "gpt-4o-mini"),
        (
            "openrouter:meta-llama/llama-3.1-8b-instruct",
            Provider.OPENROUTER,
            "meta-llama/llama-3.1-8b-instruct",
        ),
        ("huggingface:gemma-3-270m", Provider.HUGGINGFACE, "gemma-3-270m"),
        ("anthropic", Provider.ANTHROPIC, None),
        ("llama3.1:8b", None, "llama3.1:8b"),
        ("gpt-4o", None, "gpt-4o"),
    ],
)
def test_model_id_splits_only_on_a_known_provider_prefix(
    text: str, provider: Provider | None, model: str | None
) -> None:
    parsed = ModelId.parse(text)
    assert (parsed.provider, parsed.model) == (provider, model)
    assert str(parsed) == text


def test_provider_locality() -> None:
    assert {p for p in Provider if p.is_local} == {Provider.OLLAMA, Provider.HUGGINGFACE}


def test_route_trail_describes_every_attempt_and_drop_on_its_own_line() -> None:
    trail = RouteTrail(
        attempts=[
            Attempt(
                provider=Provider.OLLAMA,
                model="m1",
                ok=False,
                error_kind="unavailable",
                message="refused",
                elapsed_ms=1.0,
            ),
            Attempt(provider=Provider.HUGGINGFACE, model="m2", ok=True, elapsed_ms=2.0),
        ],
        drops=[Drop(provider=Provider.OPENAI, model="gpt", reason="no key")],
    )
    lines = trail.describe().splitlines()
    assert len(lines) == 3
    assert "ollama:m1" in lines[0] and "refused" in lines[0]
    assert "huggingface:m2 -> ok" in lines[1]
    assert "openai:gpt -> skipped: no key" in lines[2]


def test_unknown_request_parameter_is_a_type_error_not_silently_dropped() -> None:
    from forge_core import Forge, ForgeConfig

    with pytest.raises(TypeError, match="max_token"):
        Forge(ForgeConfig()).chat("hi", max_token=3)
