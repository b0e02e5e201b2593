"""Every LangChain content-block shape for images, audio and files reaches forge as ordered
parts, and comes back as v1 blocks; what forge cannot carry is refused by name."""

from __future__ import annotations

import base64
from typing import Any

import forge_core
import pytest
from forge_core import AudioPart, FilePart, ForgeConfig, ImagePart, TextPart
from forge_core.testing import ScriptedBackend
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_forge import ForgeChat
from langchain_forge._utils import message_from_forge, message_to_forge

URL = "https://example.com/cat.png"
PNG = "iVBORw0KGgo="
DATA_URL = f"data:image/png;base64,{PNG}"
WAV = "UklGRg=="
PDF = base64.b64encode(b"%PDF-1.4").decode()
URL_IMAGE = ImagePart(url=URL)
DATA_IMAGE = ImagePart(data=PNG, media_type="image/png")


def _only_part(block: dict[str, Any] | str) -> forge_core.ContentPart:
    message = message_to_forge(HumanMessage(content=[{"type": "text", "text": "Look:"}, block]))
    assert isinstance(message.content, list)
    assert message.content[0] == TextPart(text="Look:")
    (part,) = message.content[1:]
    return part


@pytest.mark.parametrize(
    ("block", "part"),
    [
        ({"type": "image_url", "image_url": {"url": URL}}, URL_IMAGE),
        ({"type": "image_url", "image_url": URL}, URL_IMAGE),
        (
            {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "high"}},
            DATA_IMAGE.model_copy(update={"detail": "high"}),
        ),
        ({"type": "image", "url": URL}, URL_IMAGE),
        ({"type": "image", "base64": PNG, "mime_type": "image/png"}, DATA_IMAGE),
        (
            {"type": "image", "url": URL, "extras": {"detail": "low"}},
            ImagePart(url=URL, detail="low"),
        ),
        ({"type": "image", "source_type": "url", "url": URL}, URL_IMAGE),
        (
            {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
            DATA_IMAGE,
        ),
        (
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                "cache_control": {"type": "ephemeral"},
            },
            DATA_IMAGE.model_copy(update={"cache_control": {"type": "ephemeral"}}),
        ),
        ({"type": "image", "source": {"type": "url", "url": URL}}, URL_IMAGE),
    ],
    ids=[
        "openai-image_url",
        "openai-image_url-string",
        "openai-data-url-detail",
        "v1-url",
        "v1-base64",
        "v1-extras-detail",
        "v0-url",
        "v0-base64",
        "anthropic-base64-cache_control",
        "anthropic-url",
    ],
)
def test_each_image_block_shape_is_an_image_part(block: dict[str, Any], part: ImagePart) -> None:
    assert _only_part(block) == part


@pytest.mark.parametrize(
    ("block", "part"),
    [
        (
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
            AudioPart(data=WAV, media_type="audio/wav"),
        ),
        (
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "mp3"}},
            AudioPart(data=WAV, media_type="audio/mpeg"),
        ),
        (
            {"type": "audio", "base64": WAV, "mime_type": "audio/wav"},
            AudioPart(data=WAV, media_type="audio/wav"),
        ),
        (
            {"type": "audio", "source_type": "base64", "data": WAV, "mime_type": "audio/wav"},
            AudioPart(data=WAV, media_type="audio/wav"),
        ),
        (
            {
                "type": "file",
                "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
            },
            FilePart(data=PDF, media_type="application/pdf", filename="a.pdf"),
        ),
        (
            {
                "type": "file",
                "base64": PDF,
                "mime_type": "application/pdf",
                "extras": {"filename": "a.pdf"},
            },
            FilePart(data=PDF, media_type="application/pdf", filename="a.pdf"),
        ),
        (
            {"type": "file", "source_type": "base64", "data": PDF, "filename": "a.pdf"},
            FilePart(data=PDF, media_type="application/pdf", filename="a.pdf"),
        ),
        (
            {"type": "file", "url": "https://example.com/a.pdf"},
            FilePart(url="https://example.com/a.pdf"),
        ),
        (
            {
                "type": "document",
                "title": "a.pdf",
                "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            },
            FilePart(data=PDF, media_type="application/pdf", filename="a.pdf"),
        ),
        (
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
            },
            FilePart(data=base64.b64encode(b"hi").decode(), media_type="text/plain"),
        ),
        (
            {"type": "text-plain", "text": "hi", "mime_type": "text/plain"},
            FilePart(data=base64.b64encode(b"hi").decode(), media_type="text/plain"),
        ),
    ],
    ids=[
        "openai-input_audio-wav",
        "openai-input_audio-mp3",
        "v1-audio",
        "v0-audio",
        "openai-file",
        "v1-file",
        "v0-file-type-from-filename",
        "v1-file-url",
        "anthropic-document-pdf",
        "anthropic-document-text",
        "v1-text-plain",
    ],
)
def test_each_audio_and_file_block_shape_is_a_part(
    block: dict[str, Any], part: AudioPart | FilePart
) -> None:
    assert _only_part(block) == part


def test_text_blocks_keep_their_cache_control_and_their_order() -> None:
    cached = {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}
    message = message_to_forge(
        SystemMessage(content=[{"type": "image", "url": URL}, cached, "and more"])
    )
    assert message.content == [
        URL_IMAGE,
        TextPart(text="Long rules.", cache_control={"type": "ephemeral"}),
        TextPart(text="and more"),
    ]


def test_text_only_blocks_stay_one_string() -> None:
    message = message_to_forge(HumanMessage(content=["a", {"type": "text", "text": "b"}]))
    assert message.content == "ab"


def test_an_image_in_a_tool_result_is_carried() -> None:
    message = message_to_forge(
        ToolMessage(content=[{"type": "image", "url": URL}], tool_call_id="call_1")
    )
    assert message.role == "tool" and message.content == [URL_IMAGE]


def test_a_block_missing_what_it_needs_names_the_block_and_the_reason() -> None:
    with pytest.raises(ValueError, match=r"block 1 \('image'\) cannot be read: .*media_type"):
        message_to_forge(HumanMessage(content=["Look:", {"type": "image", "base64": PNG}]))


def test_parts_come_back_as_v1_blocks_and_round_trip() -> None:
    forge_message = forge_core.Message(
        role="user",
        content=[
            TextPart(text="Compare", cache_control={"type": "ephemeral"}),
            ImagePart(url=URL, detail="low"),
            DATA_IMAGE,
            AudioPart(data=WAV, media_type="audio/wav"),
            FilePart(data=PDF, media_type="application/pdf", filename="a.pdf"),
        ],
    )
    back = message_from_forge(forge_message)
    assert isinstance(back, HumanMessage)
    assert back.content == [
        {"type": "text", "text": "Compare", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "url": URL, "extras": {"detail": "low"}},
        {"type": "image", "base64": PNG, "mime_type": "image/png"},
        {"type": "audio", "base64": WAV, "mime_type": "audio/wav"},
        {
            "type": "file",
            "base64": PDF,
            "mime_type": "application/pdf",
            "extras": {"filename": "a.pdf"},
        },
    ]
    assert message_to_forge(back) == forge_message


def test_forge_chat_sends_an_image_question_to_a_model_that_sees() -> None:
    blind = ScriptedBackend(
        "?", provider="ollama", capabilities=forge_core.Capabilities(tools=True)
    )
    seeing = ScriptedBackend("A cat.", model="gpt-4o-mini")
    llm = ForgeChat(config=ForgeConfig(), backends={"ollama": blind, "openai": seeing})
    answer = llm.invoke(
        [
            HumanMessage(
                content=[{"type": "text", "text": "What is it?"}, {"type": "image", "url": URL}]
            )
        ]
    )
    assert isinstance(answer, AIMessage) and answer.content == "A cat."
    assert blind.calls == []
    assert seeing.calls[0].request.messages[0].parts_of(ImagePart) == [URL_IMAGE]
