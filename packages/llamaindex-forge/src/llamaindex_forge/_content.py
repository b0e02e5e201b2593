"""LlamaIndex media blocks -> forge's parts (`forge_core.ImagePart`, `AudioPart`, `FilePart`).

An `ImageBlock`, `AudioBlock` or `DocumentBlock` given by URL stays a URL (forge fetches
nothing; the planner routes it to a deployment that takes URLs); given as bytes or a path it
is read and sent as base64 with its media type (the block's own, llama-index's guess, or one
guessed from the file name). A `CachePoint` marks the part before it as a prompt-cache
breakpoint (Anthropic's ``cache_control``), as llama-index's Anthropic integration reads it.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Literal, cast

import forge_core
from llama_index.core.base.llms.types import AudioBlock, CachePoint, DocumentBlock, ImageBlock

__all__ = ["MEDIA_BLOCKS", "cache_point", "media_part"]

#: The blocks `media_part` reads.
MEDIA_BLOCKS = (ImageBlock, AudioBlock, DocumentBlock)

#: An ``AudioBlock.format`` -> media type, where `mimetypes` has none or another spelling.
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}

#: The title `DocumentBlock` gives a document that has none.
_DEFAULT_TITLE = "input_document"


def media_part(
    block: ImageBlock | AudioBlock | DocumentBlock, where: str
) -> forge_core.ContentPart:
    """``block`` as a forge part; `ValueError` when its media type cannot be told."""
    if isinstance(block, ImageBlock):
        if block.url is not None and block.image is None:
            return forge_core.ImagePart(url=str(block.url), detail=_detail(block.detail))
        media_type = block.image_mimetype or _guess(block.path)
        data = block.resolve_image(as_base64=True).read()
        return forge_core.ImagePart(
            data=data.decode(),
            media_type=_known(media_type, "image", where),
            detail=_detail(block.detail),
        )
    if isinstance(block, AudioBlock):
        if block.url is not None and block.audio is None:
            return forge_core.AudioPart(url=str(block.url))
        media_type = _AUDIO_TYPES.get(block.format or "") or _guess(block.path)
        data = block.resolve_audio(as_base64=True).read()
        return forge_core.AudioPart(
            data=data.decode(), media_type=_known(media_type, "audio", where)
        )
    filename = Path(str(block.path)).name if block.path else None
    if block.title and block.title != _DEFAULT_TITLE:
        filename = block.title
    if block.url is not None and block.data is None:
        return forge_core.FilePart(url=str(block.url), filename=filename)
    media_type = block.document_mimetype or _guess(block.path)
    data = base64.b64encode(block.resolve_document().read()).decode()
    return forge_core.FilePart(
        data=data, media_type=_known(media_type, "document", where), filename=filename
    )


def cache_point(parts: list[forge_core.ContentPart], point: CachePoint, where: str) -> None:
    """Mark the last of ``parts`` with ``point``'s ``cache_control``."""
    last = parts[-1] if parts else None
    if last is None or isinstance(last, forge_core.ReasoningPart):
        raise ValueError(f"ForgeLLM: a CachePoint in a {where} message must follow content")
    parts[-1] = last.model_copy(
        update={"cache_control": point.cache_control.model_dump(exclude_none=True)}
    )


_Detail = Literal["auto", "low", "high"]


def _detail(detail: str | None) -> _Detail | None:
    """An ``ImageBlock.detail`` OpenAI knows; any other value is not a resolution hint."""
    return cast("_Detail", detail) if detail in ("auto", "low", "high") else None


def _guess(path: object) -> str | None:
    return mimetypes.guess_type(str(path))[0] if path else None


def _known(media_type: str | None, kind: str, where: str) -> str:
    if not media_type:
        raise ValueError(
            f"ForgeLLM: the media type of a {kind} block in a {where} message cannot be told; "
            "set its mimetype"
        )
    return media_type
