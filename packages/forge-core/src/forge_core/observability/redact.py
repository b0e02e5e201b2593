"""What of forge's own strings may go into a span, a metric or a label, and in what form.

An endpoint goes without credentials, query or fragment (`safe_url`); a text that may hold a
URL goes with any ``user:password@`` removed (`redact_credentials`); a drop reason goes whole
as an event's detail but as one of a few categories in a metric (`drop_reason`); an HTTP
endpoint gives its server address and port (`server_attributes`). Nothing a user wrote passes
through here: spans and metrics never carry prompts, answers or error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

__all__ = ["drop_reason", "is_http", "redact_credentials", "safe_url", "server_attributes"]


def is_http(endpoint: str) -> bool:
    """Whether ``endpoint`` (`endpoint_of`) is an HTTP base URL, not ``provider:in-process``."""
    return endpoint.startswith(("http://", "https://"))


@lru_cache(maxsize=256)
def server_attributes(endpoint: str) -> Mapping[str, Any]:
    """``server.address`` and ``server.port`` of an HTTP endpoint."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


@lru_cache(maxsize=256)
def safe_url(endpoint: str) -> str:
    """``endpoint`` without credentials, query or fragment (in-process names as they are)."""
    if not is_http(endpoint):
        return endpoint
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


_CREDENTIALS = re.compile(r"(?<=://)[^/\s@]+@")


def redact_credentials(text: str) -> str:
    """``text`` with any ``user:password@`` of a URL removed."""
    return _CREDENTIALS.sub("", text)


#: Drop reasons (forge's own texts: routing's planning and `Route.admit`) by what they begin with.
_DROP_REASONS = (
    ("local_only", "local_only"),
    ("lacks ", "capability"),
    ("circuit open", "circuit_open"),
    ("circuit half-open", "circuit_half_open"),
    ("health check", "health_down"),
    ("total deadline", "deadline"),
    ("no client", "no_client"),
)


def drop_reason(reason: str) -> str:
    """A drop's reason as a low-cardinality category (``forge.drop.reason``)."""
    for prefix, category in _DROP_REASONS:
        if reason.startswith(prefix):
            return category
    if "has no embeddings API" in reason:
        return "capability"
    if "gave no answer earlier" in reason:
        return "endpoint_silent"
    return "not_ready"
