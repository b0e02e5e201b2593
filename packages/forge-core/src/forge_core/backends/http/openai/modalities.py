"""What an OpenAI-compatible server reports its models take (images, audio), for routing.

Two dialects' servers say it (docs/providers.md, "OpenAI-compatible servers"): llama.cpp's
``llama-server`` answers ``GET /props`` with ``modalities: {"vision": bool, "audio": bool}``
for the model it serves (``audio`` in recent versions only), and LM Studio lists ``type:
"vlm"`` for a vision model in ``GET /api/v0/models``. No other does: llama-cpp-python's server
sees only with a multimodal ``--chat_format`` (``llava-1-5`` ...) and a clip model, and no
endpoint of it says which it runs; vLLM's and Ollama's ``/v1`` listings say nothing of inputs.

`ServerModalities` keeps one endpoint's reports: asked the first time a request with an image
or audio part reaches a model there (`ModelDescriber`), a failure kept for
`REPORT_RETRY_SECONDS` before the server is asked again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from forge_core.backends.http.openai.dialects import Dialect

__all__ = [
    "REPORTS",
    "REPORT_RETRY_SECONDS",
    "ModalityReport",
    "ReportedModalities",
    "ServerModalities",
]

#: How long a failed report (unreachable, an error status, a malformed answer) keeps routing on
#: the profile's defaults before the server is asked again.
REPORT_RETRY_SECONDS = 60.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportedModalities:
    """Whether a model takes images and audio, as its server reported (None: not reported)."""

    vision: bool | None = None
    audio: bool | None = None


#: A report's key for whatever model the server runs (llama-server serves one per process).
_EVERY_MODEL: None = None


@dataclass(frozen=True)
class ModalityReport:
    """Where a dialect's server reports what its models take (a GET at the server root), and
    how to read the answer: model -> what it takes (the `_EVERY_MODEL` key for all of them).
    ``read`` raises ``TypeError``, ``KeyError`` or ``ValueError`` on an answer of another
    shape."""

    path: str
    read: Callable[[Any], dict[str | None, ReportedModalities]]


def _flag(fields: Mapping[str, Any], name: str) -> bool | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} is not a boolean")
    return value


def _read_props(data: Any) -> dict[str | None, ReportedModalities]:
    # llama.cpp tools/server/README.md, GET /props: "modalities" - the supported modalities;
    # servers older than the field report nothing.
    if not isinstance(data, dict):
        raise TypeError("/props is not an object")
    modalities = data.get("modalities")
    if modalities is None:
        return {_EVERY_MODEL: ReportedModalities()}
    if not isinstance(modalities, dict):
        raise TypeError("modalities is not an object")
    return {
        _EVERY_MODEL: ReportedModalities(
            vision=_flag(modalities, "vision"), audio=_flag(modalities, "audio")
        )
    }


def _read_lmstudio_models(data: Any) -> dict[str | None, ReportedModalities]:
    # LM Studio's REST API v0, GET /api/v0/models: each entry's type is "vlm", "llm" or
    # "embeddings"; it documents nothing about audio.
    entries = data["data"]
    if not isinstance(entries, list):
        raise TypeError("data is not a list")
    return {
        str(entry["id"]): ReportedModalities(vision=entry["type"] == "vlm")
        for entry in entries
        if isinstance(entry.get("type"), str)
    }


#: The dialects whose servers report what their models take, and where.
REPORTS: dict[str, ModalityReport] = {
    "llama-server": ModalityReport("/props", _read_props),
    "lmstudio": ModalityReport("/api/v0/models", _read_lmstudio_models),
}


class ServerModalities:
    """What one endpoint's server reported its models take; safe from threads and tasks.

    `of` answers from the reports (no network call); `wants` says whether asking could tell
    something new; `note` reads an answer (a failure is kept for `REPORT_RETRY_SECONDS`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reported: dict[str | None, ReportedModalities] = {}
        #: The models an answer was read for (listed in it or not).
        self._asked: set[str] = set()
        self._failed_at: float | None = None

    def of(self, model: str) -> ReportedModalities | None:
        """What the server reported ``model`` takes, None before (or without) a report."""
        reported = self._reported
        if not reported:
            return None
        return reported.get(model) or reported.get(_EVERY_MODEL)

    def wants(self, model: str, dialect: Dialect | None) -> bool:
        """Whether asking the server about ``model`` could tell something new: its dialect is
        one that reports (or not identified yet), no answer has covered the model, and no ask
        failed less than `REPORT_RETRY_SECONDS` ago. No network call."""
        if dialect is not None and dialect.name not in REPORTS:
            return False
        if model in self._asked or _EVERY_MODEL in self._reported:
            return False
        failed = self._failed_at
        return failed is None or time.monotonic() - failed >= REPORT_RETRY_SECONDS

    def note(
        self, model: str, report: ModalityReport, response: httpx.Response | None, where: str
    ) -> None:
        """Read ``response`` (None: nothing answered) to ``report``'s GET, asked for ``model``
        at ``where``; a failure keeps the defaults for now. Never raises."""
        if response is None or response.status_code != 200:
            status = "no answer" if response is None else f"HTTP {response.status_code}"
            self.failed(where, report.path, status)
            return
        try:
            reported = report.read(response.json())
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            self.failed(where, report.path, f"malformed answer: {exc}")
            return
        with self._lock:
            self._reported = {**self._reported, **reported}
            self._asked.add(model)
            self._failed_at = None

    def failed(self, where: str, path: str, why: str) -> None:
        """Asking ``where`` failed (``why``): keep the defaults for `REPORT_RETRY_SECONDS`."""
        with self._lock:
            self._failed_at = time.monotonic()
        _log.debug("%s%s: no report of what its models take, defaults kept: %s", where, path, why)
