"""LlamaIndex image, audio and document blocks reach forge as ordered parts: by URL as URLs,
bytes and paths as base64 with their media type; a CachePoint marks the part before it."""

from __future__ import annotations

import base64
from pathlib import Path

import forge_core
import pytest
from forge_core import AudioPart, FilePart, ForgeConfig, ImagePart, TextPart
from forge_core.testing import ScriptedBackend
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
)
from llamaindex_forge import ForgeLLM
from llamaindex_forge._utils import to_forge_message

URL = "https://example.com/cat.png"
#: A 1x1 PNG: llama-index guesses its type from the bytes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()


def _parts(*blocks: object) -> list[forge_core.ContentPart]:
    message = to_forge_message(ChatMessage(role=MessageRole.USER, blocks=list(blocks)))
    assert isinstance(message.content, list)
    return message.content


def test_an_image_by_url_stays_a_url_in_the_users_order() -> None:
    parts = _parts(ImageBlock(url=URL, detail="low"), TextBlock(text="What is it?"))
    assert parts == [ImagePart(url=URL, detail="low"), TextPart(text="What is it?")]


def test_image_bytes_go_as_base64_with_the_guessed_mimetype() -> None:
    (part,) = _parts(ImageBlock(image=PNG))
    assert part == ImagePart(data=PNG_B64, media_type="image/png")


def test_an_image_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    (part,) = _parts(ImageBlock(path=path))
    assert part == ImagePart(data=PNG_B64, media_type="image/png")


def test_audio_bytes_go_as_base64_with_their_format() -> None:
    (part,) = _parts(AudioBlock(audio=b"RIFF....WAVE", format="wav"))
    assert part == AudioPart(
        data=base64.b64encode(b"RIFF....WAVE").decode(), media_type="audio/wav"
    )


def test_a_document_goes_as_a_file_part_named_by_its_title() -> None:
    (part,) = _parts(
        DocumentBlock(data=b"%PDF-1.4", title="a.pdf", document_mimetype="application/pdf")
    )
    data = base64.b64encode(b"%PDF-1.4").decode()
    assert part == FilePart(data=data, media_type="application/pdf", filename="a.pdf")


def test_a_document_by_url_stays_a_url() -> None:
    (part,) = _parts(DocumentBlock(url="https://example.com/a.pdf"))
    assert isinstance(part, FilePart) and part.url == "https://example.com/a.pdf"


def test_a_cache_point_marks_the_part_before_it() -> None:
    point = CachePoint(cache_control=CacheControl(type="ephemeral"))
    message = to_forge_message(
        ChatMessage(role=MessageRole.SYSTEM, blocks=[TextBlock(text="Long rules."), point])
    )
    # llama-index gives every CachePoint a ttl (5 minutes by default); Anthropic takes it.
    assert message.content == [
        TextPart(text="Long rules.", cache_control={"type": "ephemeral", "ttl": "5m"})
    ]


def test_an_image_of_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="media type of a image block in a user message"):
        _parts(ImageBlock(image=b"not an image"))


def test_text_blocks_alone_stay_one_string_joined_with_newlines() -> None:
    message = to_forge_message(
        ChatMessage(role=MessageRole.USER, blocks=[TextBlock(text="a"), TextBlock(text="b")])
    )
    assert message.content == "a\nb"


def test_forge_llm_sends_an_image_question_past_a_blind_local_model() -> None:
    blind = ScriptedBackend("?", provider="ollama", capabilities=forge_core.Capabilities())
    seeing = ScriptedBackend("A cat.")
    llm = ForgeLLM(config=ForgeConfig(), backends={"ollama": blind, "openai": seeing})
    answer = llm.chat(
        [ChatMessage(role=MessageRole.USER, blocks=[TextBlock(text="What?"), ImageBlock(url=URL)])]
    )
    assert answer.message.content == "A cat."
    assert blind.calls == []
    assert seeing.calls[0].request.messages[0].parts_of(ImagePart) == [ImagePart(url=URL)]
