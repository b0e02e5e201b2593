"""Ollama's wire conventions, shared by its admin API and both chat clients.

The request headers, the one status table (messages from Ollama's ``{"error": "<message>"}``
bodies; a model asked to think that cannot is a `CapabilityMismatch`), JSON answers, NDJSON error lines (which come with status 200) and images, which
Ollama takes only as base64 data URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from forge_core.backends.common import MAX_MESSAGE, redact, status_error
from forge_core.backends.content import refuse
from forge_core.errors import (
    CapabilityMismatch,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
)
from forge_core.types import AudioPart, FilePart, ImagePart, Message

__all__ = [
    "base64_image",
    "check_parts",
    "json_object",
    "malformed",
    "ollama_headers",
    "ollama_status_error",
    "stream_failure",
]


def ollama_headers() -> dict[str, str]:
    """The headers of every request to an Ollama server (it needs no key)."""
    return {"Accept": "application/json"}


def ollama_status_error(response: httpx.Response, model: str) -> ProviderError:
    """The one status table; the message from Ollama's ``{"error": "..."}`` body."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    detail = redact(str(error))[:MAX_MESSAGE] if error else response.reason_phrase or "error"
    message = f"ollama: HTTP {response.status_code}: {detail}"
    if response.status_code == 400 and "does not support thinking" in detail:
        # A model without thinking asked to think: this candidate cannot, the next may.
        return CapabilityMismatch(
            message, provider="ollama", model=model, status_code=response.status_code
        )
    return status_error(response, message, provider="ollama", model=model)


def json_object(response: httpx.Response, model: str) -> dict[str, Any]:
    """The JSON object an answer carries; `MalformedResponse` when it carries none."""
    try:
        data = response.json()
    except ValueError as exc:
        raise malformed("answer is not JSON", model) from exc
    if not isinstance(data, dict):
        raise malformed("answer is not a JSON object", model)
    return data


def malformed(message: str, model: str) -> MalformedResponse:
    """A `MalformedResponse` from Ollama about ``model``."""
    return MalformedResponse(f"ollama: {message}", provider="ollama", model=model)


def stream_failure(message: str, model: str) -> ProviderError:
    """The error an NDJSON ``{"error": ...}`` line means: `ModelNotFound` when the model is
    missing, else `ProviderUnavailable`."""
    text = f"ollama: {redact(message)[:MAX_MESSAGE]}"
    common: dict[str, Any] = {"provider": "ollama", "model": model}
    if "not found" in message or "file does not exist" in message:
        return ModelNotFound(text, **common)
    return ProviderUnavailable(text, **common)


def base64_image(image: ImagePart) -> str:
    """The bare base64 data of an image given as data; `CapabilityMismatch` for a URL: Ollama
    takes none, and forge does not fetch one for it (the planner sends an image URL to a
    deployment that takes URLs, `Capabilities.image_urls`)."""
    if image.data is None:
        raise refuse(image, "ollama", "images go as base64 data (data:image/png;base64,...)")
    return image.data


def check_parts(messages: Sequence[Message]) -> None:
    """Refuse what Ollama takes in no form: an image by URL, audio, files."""
    for message in messages:
        if isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ImagePart):
                    base64_image(part)
                elif isinstance(part, AudioPart | FilePart):
                    raise refuse(part, "ollama", "Ollama takes text and images only")
