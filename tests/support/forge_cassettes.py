"""vcrpy cassettes for the cloud providers: played back only, never recorded in tests.

The cassettes under ``packages/forge-core/tests/cassettes`` are written by hand to follow
docs/providers.md field for field. Requests match on method,
URL and JSON body, so a test fails when forge sends anything other than the documented body.
Clients in tests get `CANARY_KEYS` as their API keys; the canary test fails if one ever lands
in a cassette (auth headers are filtered should anyone re-record). `embedding_cassettes` plays
the embedding tests' own cassettes (``packages/forge-core/tests/embeddings/cassettes``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import vcr
from forge_core.backends.http.pool import ClientPool

CASSETTES = Path(__file__).resolve().parents[2] / "packages" / "forge-core" / "tests" / "cassettes"
EMBEDDING_CASSETTES = CASSETTES.parent / "embeddings" / "cassettes"
CANARY_PREFIX = "sk-forge-canary-"
CANARY_KEYS = {
    "OPENAI_API_KEY": CANARY_PREFIX + "openai-7f3c9a1e",
    "ANTHROPIC_API_KEY": CANARY_PREFIX + "anthropic-5b2d8e40",
    "OPENROUTER_API_KEY": CANARY_PREFIX + "openrouter-91ac64f2",
}
FILTERED_HEADERS = ["authorization", "x-api-key", "api-key", "cookie", "set-cookie"]

cassette_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    filter_headers=FILTERED_HEADERS,
    decode_compressed_response=True,
)


def _same_json_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the two requests' bodies are the same JSON (or both empty)."""
    assert json.loads(r1.body or b"null") == json.loads(r2.body or b"null")


#: The embedding cassettes, played back only and matched on the JSON body; unlike
#: `use_cassette` an interaction answers once.
embedding_cassettes = vcr.VCR(
    cassette_library_dir=str(EMBEDDING_CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "json_body"],
    filter_headers=["authorization"],
)
embedding_cassettes.register_matcher("json_body", _same_json_body)


def use_cassette(name: str) -> Any:
    """Play back cassette ``name`` (decorator or context manager); interactions may repeat,
    so a sync and an async test can share one."""
    return cassette_vcr.use_cassette(name, allow_playback_repeats=True)


class RecordingPool(ClientPool):
    """A client pool whose clients append every request they send to ``sent``.

    ``sent`` shows the headers forge really sent (cassettes store them filtered).
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def _record(self, request: httpx.Request) -> None:
        self.sent.append(request)

    async def _arecord(self, request: httpx.Request) -> None:
        self.sent.append(request)

    def sync_client(self, base_url: str) -> httpx.Client:
        client = super().sync_client(base_url)
        if self._record not in client.event_hooks["request"]:
            client.event_hooks["request"] = [*client.event_hooks["request"], self._record]
        return client

    def async_client(self, base_url: str) -> httpx.AsyncClient:
        client = super().async_client(base_url)
        if self._arecord not in client.event_hooks["request"]:
            client.event_hooks["request"] = [*client.event_hooks["request"], self._arecord]
        return client


def cassette_files() -> list[Path]:
    """Every cassette file."""
    return sorted(CASSETTES.rglob("*.yaml"))


def body_of(request: httpx.Request) -> Any:
    """The JSON body forge sent."""
    return json.loads(request.content)
