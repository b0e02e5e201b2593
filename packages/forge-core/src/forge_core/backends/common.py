"""Pieces every HTTP provider client shares: timeouts, redaction, ``Retry-After``, tool calls.

Kept apart from any one wire format so each client maps its own errors in one place while the
arithmetic (how long to wait, what to redact, how to assemble streamed tool calls) is written
once.
"""

from __future__ import annotations

import email.utils
import hashlib
import math
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from forge_core.backends.base import AttemptTimeouts
from forge_core.errors import (
    AuthenticationFailed,
    BadRequest,
    ForgeTimeout,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from forge_core.tool_calls import parse_arguments
from forge_core.types import ToolCall, ToolCallDelta

__all__ = [
    "MAX_MESSAGE",
    "DataUrl",
    "ToolCallAssembler",
    "embedding_vector",
    "fingerprint_of_key",
    "new_tool_call_id",
    "parse_data_url",
    "read_api_key",
    "reason",
    "redact",
    "retry_after",
    "timeout_extension",
]

MAX_MESSAGE = 300
_RETRY_AFTER_CAP = 3600.0
_KEY_LIKE = re.compile(r"\b(sk|key|rk)-[A-Za-z0-9_\-\.\*]{4,}")


def fingerprint_of_key(key: str | None) -> str | None:
    """A short, one-way fingerprint of an API key: what tells two keys' rate budgets apart
    without the key ever being stored or shown."""
    if not key:
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def read_api_key(
    provider: str, api_key_env: str | None, env: Mapping[str, str] | None
) -> str | None:
    """The key in ``api_key_env`` (from ``env``, else ``os.environ``); None when none is used.

    An unset or empty variable raises `AuthenticationFailed` naming the variable, never a value.
    Keys are read at call time so no client object ever holds one.
    """
    if api_key_env is None:
        return None
    source = os.environ if env is None else env
    key = source.get(api_key_env, "").strip()
    if not key:
        raise AuthenticationFailed(
            f"{provider}: no API key: set the {api_key_env} environment variable",
            provider=provider,
        )
    return key


def timeout_extension(timeouts: AttemptTimeouts) -> dict[str, float]:
    """The httpx timeout of one attempt (read capped by the total deadline, connect by read),
    in the form httpx keeps it on a request (``extensions["timeout"]``)."""
    read = timeouts.read_timeout()
    return {"connect": min(timeouts.connect, read), "read": read, "write": read, "pool": read}


def redact(text: str) -> str:
    """``text`` with anything shaped like an API key replaced by ``[redacted]``."""
    return _KEY_LIKE.sub("[redacted]", text)


def reason(exc: httpx.HTTPError) -> str:
    """A short, secret-free reason for a transport error."""
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return redact(text)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), capped."""
    raw_ms = response.headers.get("retry-after-ms")
    if raw_ms:
        try:
            return min(max(float(raw_ms) / 1000.0, 0.0), _RETRY_AFTER_CAP)
        except ValueError:
            pass
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), _RETRY_AFTER_CAP)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), _RETRY_AFTER_CAP)


def new_tool_call_id() -> str:
    """A fresh tool-call id for providers that send none (never the tool's name)."""
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class _Slot:
    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Joins streamed tool-call fragments into complete calls with stable ids.

    Providers key fragments differently (OpenAI by ``index``, Anthropic by content-block
    index); each client passes its own key. Every fragment passed on carries the call's id and
    name and the call's ordinal as ``index``, so a consumer never has to remember the first
    fragment. Two calls with the same name and arguments stay two calls: each key (or a new id
    under a reused key) opens a new slot.
    """

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._by_key: dict[Any, int] = {}

    def add(
        self, key: Any, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> ToolCallDelta:
        """Record one fragment and return it normalised (stable id, name, ordinal index)."""
        ordinal = self._by_key.get(key)
        if ordinal is None or (id and self._slots[ordinal].id != id):
            ordinal = len(self._slots)
            self._slots.append(_Slot(id=id or new_tool_call_id()))
            self._by_key[key] = ordinal
        slot = self._slots[ordinal]
        if name:
            slot.name = name
        if arguments:
            slot.arguments.append(arguments)
        return ToolCallDelta(index=ordinal, id=slot.id, name=slot.name or None, arguments=arguments)

    def __bool__(self) -> bool:
        return bool(self._slots)

    def calls(self) -> list[ToolCall]:
        """The complete calls so far; raises ``ValueError`` when arguments are not JSON."""
        return [
            ToolCall(id=slot.id, name=slot.name, arguments=parse_arguments("".join(slot.arguments)))
            for slot in self._slots
        ]


@dataclass(frozen=True)
class DataUrl:
    """A ``data:<media type>;base64,<data>`` image, split."""

    media_type: str
    data: str


_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)


def parse_data_url(url: str) -> DataUrl | None:
    """The parts of a base64 data URL, or None when ``url`` is not one (an http URL)."""
    match = _DATA_URL.match(url)
    return DataUrl(match["type"], match["data"]) if match else None


def error_class_for_status(status: int) -> type[ProviderError]:
    """The forge error class of an HTTP error status: one table for chat and embeddings alike.

    401, 402 and 403 are `AuthenticationFailed` (402 is "out of credits": like a bad key,
    waiting will not help); 404 `ModelNotFound`; 429 and 529 (overloaded) `RateLimited`;
    408 `ForgeTimeout`; other 5xx `ProviderUnavailable`; any other status `BadRequest`.
    Providers refine it from their error bodies (Anthropic's error types, OpenAI's
    ``insufficient_quota``, and an OpenAI-compatible server's 500 whose body is a request
    validation error, which is the request's fault: `BadRequest`).
    """
    if status in (401, 402, 403):
        return AuthenticationFailed
    if status == 404:
        return ModelNotFound
    if status in (429, 529):
        return RateLimited
    if status == 408:
        return ForgeTimeout
    if status >= 500:
        return ProviderUnavailable
    return BadRequest


def status_error(
    response: httpx.Response, message: str, *, provider: str, model: str
) -> ProviderError:
    """The error for an HTTP error ``response`` by `error_class_for_status`; a
    `RateLimited` carries the response's ``Retry-After`` in seconds."""
    status = response.status_code
    error_class = error_class_for_status(status)
    common: dict[str, Any] = {"provider": provider, "model": model, "status_code": status}
    if error_class is RateLimited:
        return RateLimited(message, retry_after=retry_after(response), **common)
    return error_class(message, **common)


def transport_error(
    exc: httpx.HTTPError,
    *,
    where: str,
    provider: str,
    model: str,
    connect_seconds: float,
    read_seconds: float,
    unavailable: type[ProviderUnavailable] = ProviderUnavailable,
) -> ProviderError:
    """The forge error for an httpx transport failure: one table for every HTTP client.

    A connect timeout is a `ForgeTimeout` with ``phase="connect"``; a read timeout has no phase
    yet (the router names it first-token, idle or total, which only it knows). A connection
    that could not be made is ``unavailable`` (`ProviderUnavailable` or a subclass) with
    ``refused=True``: nothing listens there, so retrying at once is pointless. ``where`` names
    the endpoint (``"openai at https://..."``).
    """
    common: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, httpx.ConnectTimeout):
        return ForgeTimeout(
            f"{where}: connect timeout after {connect_seconds:g}s",
            timeout_seconds=connect_seconds,
            phase="connect",
            **common,
        )
    if isinstance(exc, httpx.TimeoutException):
        return ForgeTimeout(
            f"{where}: no data within {read_seconds:g}s", timeout_seconds=read_seconds, **common
        )
    if isinstance(exc, httpx.ConnectError):
        return unavailable(f"{where}: cannot connect: {reason(exc)}", refused=True, **common)
    return ProviderUnavailable(f"{where}: connection failed: {reason(exc)}", **common)


def embedding_vector(raw: Any) -> list[float]:
    """One embedding from a response body, as finite floats; ``ValueError`` when it is not one.

    llama-cpp-python's server, running a model whose GGUF declares no pooling (chat models such
    as Gemma or SmolLM2), answers with one vector per token instead of one per text; those are
    mean-pooled and L2-normalised here, as the in-process backend does.
    """
    if isinstance(raw, list) and raw and all(isinstance(row, list) for row in raw):
        return _normalised(_mean([_numbers(row) for row in raw]))
    return _numbers(raw)


def _numbers(raw: Any) -> list[float]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("an embedding is not a non-empty list of numbers")
    vector = [float(x) for x in raw]
    if not all(math.isfinite(x) for x in vector):
        raise ValueError("an embedding holds a non-finite number")
    return vector


def _mean(rows: list[list[float]]) -> list[float]:
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise ValueError("token embeddings of different lengths")
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)]


def _normalised(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector
