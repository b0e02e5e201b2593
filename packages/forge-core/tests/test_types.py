from __future__ import annotations

import pytest
from forge_core import (
    Capabilities,
    ChatRequest,
    Message,
    ModelId,
    ModelRequirements,
    Provider,
    RouteTrail,
)
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


def test_message_content_is_text_or_ordered_parts() -> None:
    from forge_core import ImagePart, Message, ReasoningPart, TextPart

    plain = Message(role="user", content="hi")
    assert plain.text == "hi" and plain.parts == [TextPart(text="hi")]
    mixed = Message(
        role="assistant",
        content=[
            ReasoningPart(text="think", signature="sig", provider=Provider.ANTHROPIC),
            TextPart(text="a"),
            ImagePart(url="https://example.com/x.png"),
            TextPart(text="b"),
        ],
    )
    assert mixed.text == "ab"
    assert [part.type for part in mixed.parts] == ["reasoning", "text", "image", "text"]
    assert mixed.parts_of(ReasoningPart)[0].signature == "sig"
    assert Message(role="user", content=[ImagePart(url="https://e/x.png")]).text is None
    # Parts survive JSON by their type tag.
    assert Message.model_validate_json(mixed.model_dump_json()) == mixed


def test_an_image_data_url_is_split_into_data_and_media_type() -> None:
    from forge_core import ImagePart

    image = ImagePart(url="data:image/png;base64,AAAA")
    assert (image.url, image.data, image.media_type) == (None, "AAAA", "image/png")
    assert image.data_url == "data:image/png;base64,AAAA"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "exactly one of url or data"),
        ({"url": "https://e/x.png", "data": "AAAA", "media_type": "image/png"}, "exactly one"),
        ({"data": "AAAA"}, "needs its media_type"),
        ({"url": "data:image/png,notbase64"}, "must be base64"),
    ],
)
def test_a_media_part_needs_one_source_and_a_type_for_data(
    fields: dict[str, str], expected: str
) -> None:
    from forge_core import ImagePart

    with pytest.raises(ValueError, match=expected):
        ImagePart(**fields)  # type: ignore[arg-type]


def test_parts_a_deployment_must_take_are_requirements() -> None:
    from forge_core import AudioPart, FilePart, ImagePart, TextPart

    request = ChatRequest(
        messages=[
            Message(
                role="user",
                content=[
                    TextPart(text="x"),
                    ImagePart(url="https://e/x.png"),
                    AudioPart(data="AAAA", media_type="audio/wav"),
                    FilePart(data="AAAA", media_type="application/pdf", filename="a.pdf"),
                ],
            )
        ]
    )
    needs = ModelRequirements.of(request)
    assert (needs.vision, needs.audio, needs.files) == (True, True, True)
    assert (needs.image_urls, needs.file_urls) == (True, False)
    assert needs.unmet(Capabilities(vision=True, image_urls=True)) == ["audio", "files"]
    # A deployment that sees images given as data only cannot take one by URL.
    assert needs.unmet(Capabilities(vision=True, audio=True, files=True)) == ["images by URL"]


def test_signed_or_redacted_reasoning_with_no_provider_named_is_anthropics() -> None:
    from forge_core import ReasoningPart

    assert ReasoningPart(text="t", signature="sig").provider is Provider.ANTHROPIC
    assert ReasoningPart(redacted="opaque").provider is Provider.ANTHROPIC
    assert ReasoningPart(text="t").provider is None
    named = ReasoningPart(text="t", signature="sig", provider=Provider.OPENROUTER)
    assert named.provider is Provider.OPENROUTER
