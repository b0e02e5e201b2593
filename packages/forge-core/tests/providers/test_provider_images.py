"""Message parts carried to every provider that takes them, in the user's order and in each
provider's documented shape (docs/providers.md); `CapabilityMismatch` naming the part where a
provider cannot take it."""

from __future__ import annotations

import base64
import logging

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, body_of, use_cassette
from forge_core import (
    AudioPart,
    CapabilityMismatch,
    ChatRequest,
    FilePart,
    Forge,
    ImagePart,
    Message,
    ModelRequirements,
    Provider,
    TextPart,
)
from forge_core.backends import AnthropicClient, OllamaClient, OllamaOpenAIClient, build_backends
from forge_core.backends.base import ChatBackend
from forge_core.backends.http.openai.wire import build_body
from forge_test_support import attempt_timeouts, config_for, embedded_in_process

PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PIXEL_URL = "https://example.com/pixel.png"
QUESTION = "What colour is this pixel?"
IMAGE_REQUEST = ChatRequest(
    messages=[Message(role="user", content=[TextPart(text=QUESTION), ImagePart(url=PIXEL)])]
)
URL_REQUEST = ChatRequest(
    messages=[
        Message(
            role="user",
            content=[ImagePart(url=PIXEL_URL, detail="low"), TextPart(text=QUESTION)],
        )
    ]
)
#: "RIFF" and a WAV header's start: enough for a body to follow the format.
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
NOTES = base64.b64encode(b"The pixel is red.").decode()


def _openai(pool: RecordingPool) -> ChatBackend:
    config = config_for({"name": "openai", "api_key_env": "OPENAI_API_KEY"})
    return build_backends(config, pool=pool, env=CANARY_KEYS)[Provider.OPENAI]


def _anthropic(pool: RecordingPool) -> AnthropicClient:
    return AnthropicClient(default_model="claude-3-5-haiku-latest", pool=pool, env=CANARY_KEYS)


# -- images -------------------------------------------------------------------------------


@use_cassette("images.yaml")
def test_openai_gets_text_and_image_url_parts(pool: RecordingPool) -> None:
    backend = _openai(pool)
    assert backend.chat(IMAGE_REQUEST, "gpt-4o-mini", attempt_timeouts()).content == "Red."


@use_cassette("images.yaml")
def test_openai_gets_an_image_by_url_with_its_detail_in_the_users_order(
    pool: RecordingPool,
) -> None:
    backend = _openai(pool)
    assert backend.chat(URL_REQUEST, "gpt-4o-mini", attempt_timeouts()).content == "Red."
    parts = body_of(pool.sent[-1])["messages"][0]["content"]
    assert [part["type"] for part in parts] == ["image_url", "text"]


@use_cassette("images.yaml")
def test_anthropic_gets_a_base64_image_block_in_the_users_order(pool: RecordingPool) -> None:
    client = _anthropic(pool)
    answer = client.chat(IMAGE_REQUEST, "claude-3-5-haiku-latest", attempt_timeouts())
    assert answer.content == "Red."
    blocks = body_of(pool.sent[-1])["messages"][0]["content"]
    assert [block["type"] for block in blocks] == ["text", "image"]


@use_cassette("images.yaml")
def test_anthropic_gets_an_image_by_url_as_a_url_source(pool: RecordingPool) -> None:
    client = _anthropic(pool)
    answer = client.chat(URL_REQUEST, "claude-3-5-haiku-latest", attempt_timeouts())
    assert answer.content == "Red."
    image = body_of(pool.sent[-1])["messages"][0]["content"][0]
    assert image == {"type": "image", "source": {"type": "url", "url": PIXEL_URL}}


@use_cassette("images.yaml")
def test_ollama_native_gets_bare_base64(pool: RecordingPool) -> None:
    ollama = OllamaClient(default_model="llava:7b", pool=pool)
    assert ollama.chat(IMAGE_REQUEST, "llava:7b", attempt_timeouts()).content == "Red."


@use_cassette("images.yaml")
def test_ollama_v1_gets_a_base64_data_url(pool: RecordingPool) -> None:
    ollama = OllamaOpenAIClient(default_model="llava:7b", dialect="ollama", pool=pool)
    assert ollama.chat(IMAGE_REQUEST, "llava:7b", attempt_timeouts()).content == "Red."


@pytest.mark.parametrize("client", [OllamaOpenAIClient, OllamaClient])
def test_ollama_refuses_image_urls_before_sending(
    client: type[OllamaClient] | type[OllamaOpenAIClient],
) -> None:
    pool = RecordingPool()
    ollama = client("http://127.0.0.1:9", default_model="llava:7b", pool=pool)
    with pytest.raises(CapabilityMismatch, match="ollama cannot take an image by URL"):
        ollama.chat(URL_REQUEST, "llava:7b", attempt_timeouts())
    assert pool.sent == []


def test_an_image_request_needs_vision_and_skips_candidates_without_it() -> None:
    assert ModelRequirements.of(IMAGE_REQUEST).vision
    forge = Forge(config_for(embedded_in_process()))
    candidates, drops = forge.router.plan(IMAGE_REQUEST)
    assert candidates == []
    assert [(drop.provider, drop.reason) for drop in drops] == [
        (Provider.HUGGINGFACE, "lacks images")
    ]


# -- audio and files ------------------------------------------------------------------------


def _ask_about(part: AudioPart | FilePart) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content=[TextPart(text="What does it say?"), part])]
    )


@use_cassette("audio_and_files.yaml")
def test_openai_gets_wav_audio_as_input_audio(pool: RecordingPool) -> None:
    request = _ask_about(AudioPart(data=WAV, media_type="audio/wav"))
    answer = _openai(pool).chat(request, "gpt-4o-audio-preview", attempt_timeouts())
    assert answer.content == "Silence."


@use_cassette("audio_and_files.yaml")
def test_openai_gets_a_pdf_as_a_file_part_with_its_filename(pool: RecordingPool) -> None:
    request = _ask_about(FilePart(data=PDF, media_type="application/pdf", filename="empty.pdf"))
    answer = _openai(pool).chat(request, "gpt-4o-mini", attempt_timeouts())
    assert answer.content == "Nothing."


@use_cassette("audio_and_files.yaml")
def test_anthropic_gets_pdf_and_text_documents(pool: RecordingPool) -> None:
    request = ChatRequest(
        messages=[
            Message(
                role="user",
                content=[
                    FilePart(data=PDF, media_type="application/pdf", filename="empty.pdf"),
                    FilePart(data=NOTES, media_type="text/plain", filename="notes.txt"),
                    TextPart(text="What does it say?"),
                ],
            )
        ]
    )
    answer = _anthropic(pool).chat(request, "claude-3-5-haiku-latest", attempt_timeouts())
    assert answer.content == "The pixel is red."


@pytest.mark.parametrize(
    ("part", "refusal"),
    [
        (AudioPart(data=WAV, media_type="audio/flac"), "an audio part \\(audio/flac\\)"),
        (AudioPart(url="https://example.com/a.wav"), "an audio part by URL"),
        (FilePart(url="https://example.com/a.pdf"), "a file by URL"),
    ],
)
def test_openai_refuses_what_its_format_has_no_place_for(
    part: AudioPart | FilePart, refusal: str
) -> None:
    with pytest.raises(CapabilityMismatch, match=refusal):
        build_body(_ask_about(part), "gpt-4o-audio-preview", stream=False)


@pytest.mark.parametrize(
    ("part", "refusal"),
    [
        (AudioPart(data=WAV, media_type="audio/wav"), "anthropic cannot take an audio part"),
        (
            FilePart(data=PDF, media_type="application/msword"),
            "anthropic cannot take a file \\(application/msword\\)",
        ),
    ],
)
def test_anthropic_refuses_audio_and_other_documents(
    part: AudioPart | FilePart, refusal: str
) -> None:
    client = AnthropicClient("http://127.0.0.1:9", default_model="m", env=CANARY_KEYS)
    with pytest.raises(CapabilityMismatch, match=refusal):
        client.body(_ask_about(part), "m", stream=False)


@pytest.mark.parametrize("client", [OllamaOpenAIClient, OllamaClient])
def test_ollama_refuses_audio_and_files(
    client: type[OllamaClient] | type[OllamaOpenAIClient],
) -> None:
    ollama = client("http://127.0.0.1:9", default_model="llava:7b", pool=RecordingPool())
    request = _ask_about(FilePart(data=PDF, media_type="application/pdf"))
    with pytest.raises(CapabilityMismatch, match="ollama cannot take a file"):
        ollama.chat(request, "llava:7b", attempt_timeouts())


# -- cache_control ---------------------------------------------------------------------------

EPHEMERAL = {"type": "ephemeral"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    "cache_control": EPHEMERAL,
}
CACHED_REQUEST = ChatRequest(
    messages=[
        Message(
            role="system",
            content=[
                TextPart(text="You are terse."),
                TextPart(text="Long shared instructions.", cache_control=EPHEMERAL),
            ],
        ),
        Message(
            role="user",
            content=[TextPart(text="A long document.", cache_control=EPHEMERAL)],
        ),
        Message(role="user", content="Weather in Paris?"),
    ],
    tools=[WEATHER_TOOL],
)


@use_cassette("cache_control.yaml")
def test_anthropic_gets_cache_control_on_system_messages_and_tools(
    pool: RecordingPool,
) -> None:
    answer = _anthropic(pool).chat(CACHED_REQUEST, "claude-3-5-haiku-latest", attempt_timeouts())
    assert answer.content == "Sunny."
    assert answer.usage is not None and answer.usage.cache_creation_input_tokens == 1200
    body = body_of(pool.sent[-1])
    assert body["system"][1] == {
        "type": "text",
        "text": "Long shared instructions.",
        "cache_control": EPHEMERAL,
    }
    assert body["tools"][0]["cache_control"] == EPHEMERAL


@use_cassette("cache_control.yaml")
def test_openai_gets_no_cache_control_and_says_so_on_the_debug_log(
    pool: RecordingPool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="forge_core.parameters"):
        answer = _openai(pool).chat(CACHED_REQUEST, "gpt-4o-mini", attempt_timeouts())
    assert answer.content == "Sunny."
    assert "openai: left out cache_control on 2 message part(s)" in caplog.text
    assert "openai: left out cache_control on tool(s) get_weather" in caplog.text


# -- what each deployment says it takes -------------------------------------------------------


def test_openai_hears_only_with_its_audio_models() -> None:
    backend = _openai(RecordingPool())
    assert backend.capabilities("gpt-4o-audio-preview").audio
    seeing = backend.capabilities("gpt-4o-mini")
    assert (seeing.vision, seeing.image_urls, seeing.files, seeing.audio) == (
        True,
        True,
        True,
        False,
    )


def test_openrouter_models_take_what_their_input_modalities_list() -> None:
    from forge_core.backends.profiles import from_openrouter

    listed = from_openrouter({"architecture": {"input_modalities": ["text", "image", "file"]}})
    assert (listed.vision, listed.image_urls, listed.files, listed.audio) == (
        True,
        True,
        True,
        False,
    )


def test_an_ollama_vision_model_takes_images_as_data_only() -> None:
    from forge_core.backends.profiles import from_ollama_show

    shown = from_ollama_show(["completion", "vision"], 8192)
    assert (shown.vision, shown.image_urls, shown.audio, shown.files) == (True, False, False, False)
