"""Routing learns whether an OpenAI-compatible server's model sees (or hears) from the server
itself where its dialect reports it: llama.cpp's llama-server (``GET /props`` ``modalities``)
and LM Studio (``type: "vlm"`` in ``GET /api/v0/models``). A request with an image or audio part
asks once per server, sync or async, and routes on the answer; a failed report keeps the
profile's default (OpenAI's: images yes) and is not asked again at once; a plain text request
and a server that reports nothing (llama-cpp-python's) ask nothing. Loopback servers answering
the documented shapes (`dialect_servers.SELF_DESCRIPTIONS`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from dialect_servers import SELF_DESCRIPTIONS, SelfDescribingServer
from forge_core import AudioPart, ChatRequest, ChatResponse, Forge, ImagePart, Message, TextPart
from forge_core.backends.http.openai.dialects import PROBES
from forge_test_support import config_for

PIXEL = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
WAV = AudioPart(data="UklGRg==", media_type="audio/wav")


def _llama_server(**modalities: bool) -> dict[str, Any]:
    described = copy.deepcopy(SELF_DESCRIPTIONS["llama-server"])
    described["/props"]["modalities"] = modalities
    return described


class _PropsFail(SelfDescribingServer):
    """A llama-server whose ``/props`` answers 500."""

    def _get(self, path: str) -> tuple[int, Any]:
        if path == "/props":
            return 500, {"error": {"code": 500, "message": "boom", "type": "server_error"}}
        return super()._get(path)


def _forge(first: str, second: str, **openai: Any) -> Forge:
    """``openai`` at ``first``, then an ``openai``-kind endpoint ``second`` at ``second``."""
    config = config_for(
        {"name": "openai", "base_url": first, "default_model": "m", **openai},
        providers={
            "endpoints": [
                {"name": "second", "kind": "openai", "base_url": second, "default_model": "m"}
            ],
            "fallback": {"enabled": True, "order": ["openai", "second"]},
        },
    )
    return Forge(config)


def _asking(*parts: ImagePart | AudioPart) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content=[TextPart(text="What is this?"), *parts])]
    )


def _lacking(answer: ChatResponse) -> list[tuple[str | None, str]]:
    return [
        (drop.deployment, drop.reason)
        for drop in answer.route.drops
        if drop.reason.startswith("lacks ")
    ]


def test_an_image_skips_a_llama_server_that_reports_no_vision_for_one_that_does() -> None:
    with (
        SelfDescribingServer(_llama_server(vision=False, audio=False)) as blind,
        SelfDescribingServer(_llama_server(vision=True, audio=False)) as seeing,
        _forge(blind.base_url, seeing.base_url) as forge,
    ):
        answers = [forge.chat(_asking(PIXEL)) for _ in range(3)]
    assert [answer.route.deployment for answer in answers] == ["second"] * 3
    assert _lacking(answers[0]) == [("openai", "lacks images")]
    assert blind.requests == []
    assert len(seeing.requests) == 3
    # Identified and described by the one GET, once per server.
    assert blind.probes == seeing.probes == ["/props"]


async def test_an_image_skips_a_blind_llama_server_async() -> None:
    with (
        SelfDescribingServer(_llama_server(vision=False)) as blind,
        SelfDescribingServer(_llama_server(vision=True)) as seeing,
    ):
        async with _forge(blind.base_url, seeing.base_url) as forge:
            answers = [await forge.achat(_asking(PIXEL)) for _ in range(2)]
    assert [answer.route.deployment for answer in answers] == ["second"] * 2
    assert _lacking(answers[1]) == [("openai", "lacks images")]
    assert blind.requests == []
    assert blind.probes == seeing.probes == ["/props"]


def test_a_streamed_image_request_is_routed_on_the_report_too() -> None:
    with (
        SelfDescribingServer(_llama_server(vision=False)) as blind,
        SelfDescribingServer(_llama_server(vision=True)) as seeing,
        _forge(blind.base_url, seeing.base_url) as forge,
    ):
        text = "".join(chunk.content or "" for chunk in forge.stream(_asking(PIXEL)))
    assert text
    assert blind.requests == []
    assert len(seeing.requests) == 1


def test_audio_goes_to_the_llama_server_that_reports_it() -> None:
    # The profile takes audio only for OpenAI's *audio* models; the report says otherwise.
    with (
        SelfDescribingServer(_llama_server(vision=True, audio=False)) as deaf,
        SelfDescribingServer(_llama_server(vision=False, audio=True)) as hearing,
        _forge(deaf.base_url, hearing.base_url) as forge,
    ):
        answer = forge.chat(_asking(WAV))
        assert forge.capabilities("second:m").audio is True
        assert forge.capabilities("second:m").vision is False
    assert answer.route.deployment == "second"
    assert _lacking(answer) == [("openai", "lacks audio")]
    assert deaf.requests == []


@pytest.mark.parametrize(
    "server",
    [
        lambda: _PropsFail(),
        lambda: SelfDescribingServer({"/props": {"modalities": "vision"}}),
    ],
    ids=["http-500", "malformed"],
)
def test_a_failing_props_keeps_the_default_and_is_not_asked_again_at_once(
    server: Callable[[], SelfDescribingServer],
) -> None:
    with (
        server() as failing,
        SelfDescribingServer() as other,
        _forge(failing.base_url, other.base_url, dialect="llama-server") as forge,
    ):
        answers = [forge.chat(_asking(PIXEL)) for _ in range(2)]
    # OpenAI's profile (images yes) stands: the request is sent, not failed or dropped.
    assert [answer.route.deployment for answer in answers] == ["openai"] * 2
    assert len(failing.requests) == 2
    assert failing.probes == ["/props"]


def test_lm_studio_reports_which_model_sees() -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS["lmstudio"]) as server:
        config = config_for(
            {"name": "openai", "base_url": server.base_url, "default_model": "m"},
            providers={
                "endpoints": [
                    {
                        "name": "lmstudio",
                        "kind": "openai",
                        "base_url": server.base_url,
                        "default_model": "meta-llama-3.1-8b-instruct",
                        "dialect": "lmstudio",
                    },
                    {
                        "name": "vlm",
                        "kind": "openai",
                        "base_url": server.base_url,
                        "default_model": "qwen2-vl-7b-instruct",
                        "dialect": "lmstudio",
                    },
                ],
                "fallback": {"enabled": True, "order": ["lmstudio", "vlm"]},
            },
        )
        with Forge(config) as forge:
            answer = forge.chat(_asking(PIXEL))
    assert answer.route.deployment == "vlm"
    assert _lacking(answer) == [("lmstudio", "lacks images")]
    assert server.probes == ["/api/v0/models"] * 2  # one per deployment


@pytest.mark.parametrize("path", ["chat", "stream"])
def test_a_plain_text_request_asks_nothing(path: str) -> None:
    with (
        SelfDescribingServer(_llama_server(vision=False)) as first,
        SelfDescribingServer() as second,
        _forge(first.base_url, second.base_url) as forge,
    ):
        request = ChatRequest(messages=[Message(role="user", content="Hello.")])
        if path == "chat":
            forge.chat(request)
        else:
            list(forge.stream(request))
    assert first.probes == second.probes == []


def test_a_server_that_reports_nothing_keeps_the_default_after_identification() -> None:
    # llama-cpp-python's server documents no report: identified once, then never asked.
    with (
        SelfDescribingServer(SELF_DESCRIPTIONS["llama-cpp"]) as server,
        SelfDescribingServer() as other,
        _forge(server.base_url, other.base_url) as forge,
    ):
        answers = [forge.chat(_asking(PIXEL)) for _ in range(2)]
    assert [answer.route.deployment for answer in answers] == ["openai"] * 2
    assert server.probes == ["/props", "/openapi.json"]


def test_an_unidentified_server_is_probed_once_and_keeps_the_default() -> None:
    with (
        SelfDescribingServer() as server,
        SelfDescribingServer() as other,
        _forge(server.base_url, other.base_url) as forge,
    ):
        answers = [forge.chat(_asking(PIXEL)) for _ in range(2)]
    assert [answer.route.deployment for answer in answers] == ["openai"] * 2
    assert server.probes == [probe.path for probe in PROBES]
