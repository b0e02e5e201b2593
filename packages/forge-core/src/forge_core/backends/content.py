"""What every provider's translation of message parts shares: refusing a part by name, and
leaving Anthropic's ``cache_control`` out where a provider has no explicit cache breakpoints.

Which parts each provider carries is listed in docs/providers.md. A part a provider cannot
take is refused with `CapabilityMismatch` naming it, never dropped; the planner routes such
requests away first (`forge_core.ModelRequirements`), so the refusal is the last guard for a
pinned model or a capability table that was too generous.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from forge_core.errors import CapabilityMismatch
from forge_core.types import AudioPart, ContentPart, FilePart, ImagePart, Message

__all__ = [
    "AUDIO_FORMATS",
    "describe",
    "leave_out_cache_control",
    "refuse",
    "require_text_only",
    "tools_without_cache_control",
]

_log = logging.getLogger("forge_core.parameters")

#: OpenAI's ``input_audio.format`` for each audio media type it takes.
AUDIO_FORMATS: Mapping[str, str] = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def describe(part: ContentPart) -> str:
    """A part as an error names it: ``an image by URL``, ``a file (application/pdf)`` ..."""
    if isinstance(part, ImagePart | AudioPart | FilePart):
        kind = {"image": "an image", "audio": "an audio part", "file": "a file"}[part.type]
        if part.url is not None:
            return f"{kind} by URL"
        return f"{kind} ({part.media_type})"
    return f"a {part.type} part"


def refuse(part: ContentPart, provider: str, why: str = "") -> CapabilityMismatch:
    """The error for a part ``provider`` cannot take (raise it)."""
    reason = f": {why}" if why else ""
    return CapabilityMismatch(f"{provider} cannot take {describe(part)}{reason}", provider=provider)


def leave_out_cache_control(messages: Sequence[Message], provider: str) -> None:
    """Say, on the debug log, that ``provider`` gets none of the messages' cache breakpoints."""
    if not _log.isEnabledFor(logging.DEBUG):
        return
    marked = sum(
        1
        for message in messages
        if isinstance(message.content, list)
        for part in message.content
        if getattr(part, "cache_control", None) is not None
    )
    if marked:
        _log.debug("%s: left out cache_control on %d message part(s)", provider, marked)


def tools_without_cache_control(
    tools: Sequence[dict[str, Any]], provider: str
) -> list[dict[str, Any]]:
    """``tools`` without their ``cache_control`` keys (Anthropic's), with a debug line naming
    the tools that had one; ``tools`` itself (as a list) when none has."""
    marked = [tool for tool in tools if "cache_control" in tool]
    if not marked:
        return list(tools)
    names = [str(tool.get("function", tool).get("name")) for tool in marked]
    _log.debug("%s: left out cache_control on tool(s) %s", provider, ", ".join(names))
    return [{key: value for key, value in tool.items() if key != "cache_control"} for tool in tools]


def require_text_only(messages: Sequence[Message], provider: str) -> None:
    """Refuse the first image, audio or file part of ``messages``: ``provider`` reads text
    only (reasoning parts are the caller's to leave out)."""
    for message in messages:
        if isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ImagePart | AudioPart | FilePart):
                    raise refuse(part, provider, "this model reads text only")
