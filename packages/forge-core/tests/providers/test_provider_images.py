"""Images carried to every provider that takes them; `CapabilityMismatch` where one cannot."""

from __future__ import annotations

import pytest
from forge_cassettes import CANARY_KEYS, RecordingPool, use_cassette
from forge_core import (
    CapabilityMismatch,
    ChatRequest,
    Forge,
    ImagePart,
    Message,
    ModelRequirements,
    Provider,
    TextPart,
)
from forge_core.backends import AnthropicClient, OllamaClient, OllamaOpenAIClient, build_backends
from forge_test_support import attempt_timeouts, config_for, embedded_in_process

PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
QUESTION = "What colour is this pixel?"
IMAGE_REQUEST = ChatRequest(
    messages=[Message(role="user", content=[TextPart(text=QUESTION), ImagePart(url=PIXEL)])]
)
URL_REQUEST = ChatRequest(
    messages=[
        Message(
            role="user",
            content=[TextPart(text=QUESTION), ImagePart(url="https://example.com/pixel.png")],
        )
    ]
)


@use_cassette("images.yaml")
def test_openai_gets_text_and_image_url_parts(pool: RecordingPool) -> None:
    config = config_for({"name": "openai", "api_key_env": "OPENAI_API_KEY"})
    backend = build_backends(config, pool=pool, env=CANARY_KEYS)[Provider.OPENAI]
    assert backend.chat(IMAGE_REQUEST, "gpt-4o-mini", attempt_timeouts()).content == "Red."


@use_cassette("images.yaml")
def test_anthropic_gets_a_base64_image_block(pool: RecordingPool) -> None:
    client = AnthropicClient(default_model="claude-3-5-haiku-latest", pool=pool, env=CANARY_KEYS)
    assert (
        client.chat(IMAGE_REQUEST, "claude-3-5-haiku-latest", attempt_timeouts()).content == "Red."
    )


@use_cassette("images.yaml")
def test_ollama_native_gets_bare_base64(pool: RecordingPool) -> None:
    ollama = OllamaClient(default_model="llava:7b", pool=pool)
    assert ollama.chat(IMAGE_REQUEST, "llava:7b", attempt_timeouts()).content == "Red."


@pytest.mark.parametrize("client", [OllamaOpenAIClient, OllamaClient])
def test_ollama_refuses_image_urls_before_sending(
    client: type[OllamaClient] | type[OllamaOpenAIClient],
) -> None:
    ollama = client("http://127.0.0.1:9", default_model="llava:7b", pool=RecordingPool())
    with pytest.raises(CapabilityMismatch, match="data URLs"):
        ollama.chat(URL_REQUEST, "llava:7b", attempt_timeouts())


def test_anthropic_refuses_image_urls_before_sending() -> None:
    client = AnthropicClient("http://127.0.0.1:9", default_model="m", env=CANARY_KEYS)
    with pytest.raises(CapabilityMismatch, match="data URLs"):
        list(client.stream(URL_REQUEST, "m", attempt_timeouts()))


def test_an_image_request_needs_vision_and_skips_candidates_without_it() -> None:
    assert ModelRequirements.of(IMAGE_REQUEST).vision
    forge = Forge(config_for(embedded_in_process()))
    candidates, drops = forge.router.plan(IMAGE_REQUEST)
    assert candidates == []
    assert [(drop.provider, drop.reason) for drop in drops] == [
        (Provider.HUGGINGFACE, "lacks images")
    ]
