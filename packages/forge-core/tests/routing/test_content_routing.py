"""Requests holding images, audio or files go to a deployment that takes them: a blind local
model is skipped, not called; when none can, the error names what the request needs."""

from __future__ import annotations

import pytest
from forge_core import (
    AudioPart,
    Capabilities,
    CapabilityMismatch,
    ChatRequest,
    Drop,
    FallbackFailed,
    Forge,
    ForgeConfig,
    ImagePart,
    Message,
    NoCapableCandidate,
    TextPart,
)
from forge_core.testing import ScriptedBackend
from forge_test_support import config_for, embedded_in_process

PIXEL = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
BLIND = Capabilities(tools=True, structured_output=True, json_mode=True)
#: A local vision model (Ollama's /api/show says "vision"): images as data only.
SEEING_LOCAL = BLIND.model_copy(update={"vision": True})


def _ask(*parts: ImagePart | AudioPart) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content=[TextPart(text="What is this?"), *parts])]
    )


def _lacking(drops: list[Drop]) -> list[tuple[str | None, str]]:
    """The deployments left out for lacking a capability (the others have no backend here)."""
    return [(d.deployment, d.reason) for d in drops if d.reason.startswith("lacks ")]


def _forge(local: ScriptedBackend, cloud: ScriptedBackend) -> Forge:
    return Forge(ForgeConfig(), backends={"ollama": local, "openai": cloud})


def test_an_image_skips_a_blind_local_model_and_goes_to_one_that_sees() -> None:
    local = ScriptedBackend("I cannot see.", provider="ollama", capabilities=BLIND)
    cloud = ScriptedBackend("A red pixel.", model="gpt-4o-mini")
    answer = _forge(local, cloud).chat(_ask(PIXEL))
    assert answer.content == "A red pixel."
    assert local.calls == []
    assert cloud.calls[0].request.messages[0].parts_of(ImagePart) == [PIXEL]
    assert _lacking(answer.route.drops) == [("ollama", "lacks images")]


def test_a_local_model_that_sees_answers_first() -> None:
    local = ScriptedBackend("Red.", provider="ollama", capabilities=SEEING_LOCAL)
    cloud = ScriptedBackend("A red pixel.")
    assert _forge(local, cloud).chat(_ask(PIXEL)).content == "Red."
    assert cloud.calls == []


def test_an_image_url_goes_past_a_model_that_takes_images_as_data_only() -> None:
    local = ScriptedBackend("Red.", provider="ollama", capabilities=SEEING_LOCAL)
    cloud = ScriptedBackend("A red pixel.")
    answer = _forge(local, cloud).chat(_ask(ImagePart(url="https://example.com/p.png")))
    assert answer.content == "A red pixel."
    assert local.calls == []
    assert _lacking(answer.route.drops) == [("ollama", "lacks images by URL")]


def test_when_no_deployment_can_take_the_part_the_error_names_it() -> None:
    local = ScriptedBackend("?", provider="ollama", capabilities=BLIND)
    cloud = ScriptedBackend("?", capabilities=BLIND)
    with pytest.raises(NoCapableCandidate) as caught:
        _forge(local, cloud).chat(_ask(PIXEL, AudioPart(data="UklGRg==", media_type="audio/wav")))
    error = caught.value
    assert isinstance(error, CapabilityMismatch) and isinstance(error, FallbackFailed)
    assert error.needs == ["images", "audio"]
    assert "no deployment can take this request: it needs images, audio" in str(error)
    assert _lacking(error.route.drops) == [
        ("ollama", "lacks images, audio"),
        ("openai", "lacks images, audio"),
    ]
    assert local.calls == cloud.calls == []


def test_audio_goes_only_where_it_is_heard() -> None:
    local = ScriptedBackend("?", provider="ollama", capabilities=SEEING_LOCAL)
    cloud = ScriptedBackend(
        "Silence.", capabilities=SEEING_LOCAL.model_copy(update={"audio": True})
    )
    answer = _forge(local, cloud).chat(_ask(AudioPart(data="UklGRg==", media_type="audio/wav")))
    assert answer.content == "Silence." and local.calls == []


def test_when_a_deployment_that_sees_is_only_unready_the_error_is_a_fallback_failure() -> None:
    forge = Forge(
        config_for(embedded_in_process(), {"name": "openai", "api_key_env": "FORGE_NO_SUCH_KEY"})
    )
    with pytest.raises(FallbackFailed) as caught:
        forge.chat(_ask(PIXEL))
    assert not isinstance(caught.value, NoCapableCandidate)
    assert "lacks images" in str(caught.value) and "FORGE_NO_SUCH_KEY" in str(caught.value)
