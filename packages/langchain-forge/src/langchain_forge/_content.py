"""LangChain message content <-> forge's ordered parts (`forge_core.TextPart`, `ImagePart`,
`AudioPart`, `FilePart`).

Every block shape LangChain documents is read: v1 standard blocks (``{"type": "image", "url"
| "base64", "mime_type"}``, ``audio``, ``file``, ``text-plain``), the older standard data
blocks (``{"type": "image", "source_type": "base64" | "url", "data" | "url", "mime_type"}``),
OpenAI's (``image_url`` with a URL or a data URL and ``detail``, ``input_audio``, ``file``
with ``file_data``) and Anthropic's (``image`` / ``document`` with a ``source``). A text or
media block's ``cache_control`` (top level or in ``extras``) is kept. A block forge cannot
carry raises `ValueError` naming it; nothing is dropped. Answers come back as v1 blocks.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping
from typing import Any

import forge_core
from pydantic import ValidationError

__all__ = ["content_to_forge", "parts_to_content"]

#: ``input_audio.format`` -> media type (OpenAI takes wav and mp3).
_AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg"}

_Media = forge_core.ImagePart | forge_core.AudioPart | forge_core.FilePart
_MEDIA: dict[str, type[_Media]] = {
    "image": forge_core.ImagePart,
    "audio": forge_core.AudioPart,
    "file": forge_core.FilePart,
}


def content_to_forge(
    content: str | list[str | dict[str, Any]], *, where: str = "message"
) -> str | list[forge_core.ContentPart]:
    """A message's content for a `forge_core.Message`: a string as is; a list of text only
    (strings and plain ``text`` blocks) joined into one string, as ``BaseMessage.text``
    does; anything else as ordered parts. ``ValueError`` names a block forge cannot carry."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError(
            f"ForgeChat: {where} content must be a string or a list of content blocks, "
            f"got {type(content).__name__}"
        )
    parts = [_part(block, index, where) for index, block in enumerate(content)]
    texts = [
        part.text
        for part in parts
        if isinstance(part, forge_core.TextPart) and part.cache_control is None
    ]
    return "".join(texts) if len(texts) == len(parts) else parts


def _part(block: str | Mapping[str, Any], index: int, where: str) -> forge_core.ContentPart:
    if isinstance(block, str):
        return forge_core.TextPart(text=block)
    kind = block.get("type") if isinstance(block, Mapping) else None
    try:
        if kind == "text" and isinstance(block.get("text"), str):
            return forge_core.TextPart(text=block["text"], cache_control=_cache_control(block))
        if kind in ("reasoning", "thinking", "redacted_thinking"):
            return _reasoning_part(block)
        reader = _READERS.get(kind) if isinstance(kind, str) else None
        if reader is not None:
            return reader(block)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"ForgeChat: {where} content block {index} ({kind!r}) cannot be read: {_why(exc)}"
        ) from None
    shown = kind if kind is not None else type(block).__name__
    raise ValueError(
        f"ForgeChat: {where} content block {index} has type {shown!r}, which forge cannot "
        "carry (it carries text, image, audio and file blocks)"
    )


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
    if isinstance(exc, KeyError):
        return f"it has no {exc}"
    return str(exc)


def _reasoning_part(block: Mapping[str, Any]) -> forge_core.ContentPart:
    """A reasoning block outside an AIMessage (an AIMessage's are read apart, by
    `reasoning_parts_from`): refused, since only an answer's own thinking goes back."""
    raise ValueError("reasoning blocks are carried on AIMessages only")


def _extras(block: Mapping[str, Any]) -> Mapping[str, Any]:
    extras = block.get("extras")
    return extras if isinstance(extras, Mapping) else {}


def _cache_control(block: Mapping[str, Any]) -> dict[str, Any] | None:
    found = block.get("cache_control") or _extras(block).get("cache_control")
    return dict(found) if isinstance(found, Mapping) else None


def _filename(block: Mapping[str, Any]) -> str | None:
    for holder in (block, _extras(block), block.get("metadata") or {}):
        name = holder.get("filename") or holder.get("title")
        if isinstance(name, str):
            return name
    return None


def _standard(block: Mapping[str, Any]) -> forge_core.ContentPart:
    """A v1 block (``url`` | ``base64``, ``mime_type``) or an older standard data block
    (``source_type``: ``base64`` | ``url``, with ``data`` | ``url``); Anthropic's ``source``
    is read too, since LangChain passes such blocks through unchanged."""
    kind = str(block["type"])
    if isinstance(block.get("source"), Mapping):
        return _anthropic(block, kind)
    source_type = block.get("source_type")
    if source_type is not None and source_type not in ("base64", "url"):
        raise ValueError(f"source_type {source_type!r} (forge takes base64 data or a URL)")
    if "file_id" in block:
        raise ValueError("a provider's file id (forge takes base64 data or a URL)")
    data = block.get("data") if source_type == "base64" else block.get("base64")
    return _media(
        kind,
        block,
        url=block.get("url"),
        data=data,
        media_type=block.get("mime_type"),
    )


def _media(
    kind: str, block: Mapping[str, Any], *, url: Any, data: Any, media_type: Any
) -> forge_core.ContentPart:
    fields: dict[str, Any] = {"url": url, "data": data, "cache_control": _cache_control(block)}
    filename = _filename(block)
    if not media_type and filename:
        media_type = mimetypes.guess_type(filename)[0]
    fields["media_type"] = media_type or None
    if kind == "image":
        detail = block.get("detail") or _extras(block).get("detail")
        if detail is not None:
            fields["detail"] = detail
    elif kind == "file":
        fields["filename"] = filename
    return _MEDIA[kind](**fields)


def _anthropic(block: Mapping[str, Any], kind: str) -> forge_core.ContentPart:
    """Anthropic's ``image`` / ``document`` with a ``base64``, ``url`` or ``text`` source."""
    source = block["source"]
    kind = "file" if kind == "document" else kind
    source_type = source.get("type")
    if source_type == "base64":
        return _media(kind, block, url=None, data=source["data"], media_type=source["media_type"])
    if source_type == "url":
        return _media(kind, block, url=source["url"], data=None, media_type=None)
    if source_type == "text" and kind == "file":
        data = base64.b64encode(str(source["data"]).encode()).decode()
        return _media(kind, block, url=None, data=data, media_type="text/plain")
    raise ValueError(f"a {source_type!r} source (forge takes base64 data, a URL or text)")


def _image_url(block: Mapping[str, Any]) -> forge_core.ContentPart:
    """OpenAI's ``{"image_url": {"url", "detail"}}`` (or ``{"image_url": "<url>"}``)."""
    image = block["image_url"]
    if isinstance(image, str):
        image = {"url": image}
    return forge_core.ImagePart(
        url=image["url"], detail=image.get("detail"), cache_control=_cache_control(block)
    )


def _input_audio(block: Mapping[str, Any]) -> forge_core.ContentPart:
    """OpenAI's ``{"input_audio": {"data", "format"}}``."""
    audio = block["input_audio"]
    media_type = _AUDIO_FORMATS.get(audio["format"], f"audio/{audio['format']}")
    return forge_core.AudioPart(data=audio["data"], media_type=media_type)


def _file(block: Mapping[str, Any]) -> forge_core.ContentPart:
    """OpenAI's ``{"file": {"file_data", "filename"}}``, else a standard ``file`` block."""
    file = block.get("file")
    if not isinstance(file, Mapping):
        return _standard(block)
    if "file_data" not in file:
        raise ValueError("a provider's file id (forge takes base64 data or a URL)")
    filename = file.get("filename")
    data = file["file_data"]
    cache_control = _cache_control(block)
    if not str(data).startswith("data:"):
        guessed = mimetypes.guess_type(filename)[0] if filename else None
        return forge_core.FilePart(
            data=data, media_type=guessed, filename=filename, cache_control=cache_control
        )
    return forge_core.FilePart(url=data, filename=filename, cache_control=cache_control)


def _text_plain(block: Mapping[str, Any]) -> forge_core.ContentPart:
    """A v1 ``text-plain`` block: a plain-text document."""
    if isinstance(block.get("text"), str):
        data = base64.b64encode(block["text"].encode()).decode()
        return _media("file", block, url=None, data=data, media_type="text/plain")
    return _media(
        "file", block, url=block.get("url"), data=block.get("base64"), media_type="text/plain"
    )


_READERS = {
    "image": _standard,
    "audio": _standard,
    "file": _file,
    "document": lambda block: _anthropic(block, "document"),
    "image_url": _image_url,
    "input_audio": _input_audio,
    "text-plain": _text_plain,
}


def parts_to_content(message: forge_core.Message) -> str | list[str | dict[str, Any]]:
    """A forge message's content as LangChain content: a string as is, parts as v1 blocks
    (``detail``, ``filename`` and a media part's ``cache_control`` in ``extras``)."""
    if not isinstance(message.content, list):
        return message.content or ""
    blocks: list[str | dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, forge_core.TextPart):
            text: dict[str, Any] = {"type": "text", "text": part.text}
            if part.cache_control is not None:
                text["cache_control"] = part.cache_control
            blocks.append(text)
        elif isinstance(part, forge_core.ReasoningPart):
            continue  # reasoning goes back through its own hook (not carried yet)
        else:
            blocks.append(_block_of(part))
    return blocks


def _block_of(part: _Media) -> dict[str, Any]:
    block: dict[str, Any] = {"type": part.type}
    if part.url is not None:
        block["url"] = part.url
    else:
        block["base64"], block["mime_type"] = part.data, part.media_type
    extras: dict[str, Any] = {}
    if isinstance(part, forge_core.ImagePart) and part.detail is not None:
        extras["detail"] = part.detail
    if isinstance(part, forge_core.FilePart) and part.filename is not None:
        extras["filename"] = part.filename
    if part.cache_control is not None:
        extras["cache_control"] = part.cache_control
    if extras:
        block["extras"] = extras
    return block
