"""No API key in any cassette: the canary keys tests use must never be written to one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from forge_cassettes import CANARY_KEYS, CANARY_PREFIX, FILTERED_HEADERS, cassette_files


def secrets_in(path: Path) -> list[str]:
    """What in ``path`` looks like a leaked key: a canary, or an auth header that survived."""
    text = path.read_text(encoding="utf-8")
    found = [f"canary {CANARY_PREFIX}..." for _ in range(text.count(CANARY_PREFIX))]
    found += [f"key of {name}" for name, key in CANARY_KEYS.items() if key in text]
    data = yaml.safe_load(text) or {}
    for interaction in data.get("interactions", []):
        headers = {name.lower() for name in (interaction["request"].get("headers") or {})}
        found += [f"request header {name}" for name in sorted(headers & set(FILTERED_HEADERS))]
    return found


def test_there_are_cassettes_to_scan() -> None:
    assert len(cassette_files()) >= 8


@pytest.mark.parametrize("path", cassette_files(), ids=lambda path: path.name)
def test_cassette_holds_no_canary_key_or_auth_header(path: Path) -> None:
    assert secrets_in(path) == []


def test_the_scan_finds_a_planted_canary(tmp_path: Path) -> None:
    planted = tmp_path / "leaky.yaml"
    planted.write_text(
        "interactions:\n- request:\n    headers:\n      x-api-key: ["
        + CANARY_KEYS["ANTHROPIC_API_KEY"]
        + "]\n    body: ''\n",
        encoding="utf-8",
    )
    assert secrets_in(planted) == [
        "canary sk-forge-canary-...",
        "key of ANTHROPIC_API_KEY",
        "request header x-api-key",
    ]
