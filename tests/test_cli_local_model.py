"""The `forge` commands that run the embedded model: chat, health's runtime check, warm, stats.

The commands' other tests are in test_cli.py (no model) and test_cli_local_server.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from forge_cli_runner import NO_KEY_ENV, forge_cli, invoke, ollama_config, write_config
from forge_core import EMBEDDED_MODEL
from forge_test_support import closed_port_url
from ollama_pull_server import OllamaPullServer

pytestmark = pytest.mark.local_model


def test_chat_stream_on_the_embedded_model_with_the_shipped_config(tmp_path: Path) -> None:
    repo_config = Path(__file__).resolve().parents[1] / "forge.yaml"
    result = forge_cli(
        "chat",
        "Say hi.",
        "--stream",
        "--max-tokens",
        "8",
        "--model",
        f"huggingface:{EMBEDDED_MODEL}",
        "--config",
        str(repo_config),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert f"served by huggingface:{EMBEDDED_MODEL}" in result.stderr
    # Loading the model prints nothing of llama.cpp's (it goes to the forge.llama_cpp logger).
    assert not [line for line in result.stderr.splitlines() if line.startswith("llama")]


def test_health_gives_each_provider_a_status_latency_circuit_and_reason(tmp_path: Path) -> None:
    with OllamaPullServer({}, pulled=["tiny:1b"]) as server:
        config = ollama_config(tmp_path / "forge.yaml", server.base_url, "huggingface", "openai")
        result = invoke("health", "--json", "-c", str(config))
    assert result.exit_code == 0, result.output
    rows = {row["provider"]: row for row in json.loads(result.stdout)["providers"]}
    assert list(rows) == ["ollama", "huggingface", "openai"]
    assert rows["ollama"]["status"] == "up"
    assert rows["ollama"]["latency_ms"] > 0
    assert ("GET", "/api/version", {}) in server.requests
    assert rows["huggingface"]["status"] == "up"
    assert "in a worker process" in rows["huggingface"]["reason"]
    assert "generated a token in a child process" in rows["huggingface"]["reason"]
    assert rows["openai"]["status"] == "no key"
    assert NO_KEY_ENV in rows["openai"]["reason"]
    assert {row["circuit"] for row in rows.values()} == {"closed"}


def test_warm_loads_the_embedded_model_and_preloads_pulled_ollama_models(
    tmp_path: Path,
) -> None:
    with OllamaPullServer({}, pulled=["tiny:1b"]) as server:
        config = ollama_config(tmp_path / "forge.yaml", server.base_url, "huggingface")
        data = yaml.safe_load(config.read_text())
        data["providers"]["local"]["ollama"]["preferred_models"] = ["tiny:1b", "absent:2b"]
        write_config(config, data)
        result = forge_cli("warm", "--json", "-c", str(config), cwd=tmp_path)
        loaded = list(server.loaded)
    assert result.returncode == 0, result.stderr
    warmed = {entry["model"]: entry["seconds"] for entry in json.loads(result.stdout)}
    assert set(warmed) == {f"huggingface:{EMBEDDED_MODEL}", "ollama:tiny:1b"}
    assert all(seconds > 0 for seconds in warmed.values())
    assert loaded == ["tiny:1b"]


def test_stats_after_chat_shows_the_fallback_it_recorded(tmp_path: Path) -> None:
    config = ollama_config(tmp_path / "forge.yaml", closed_port_url(), "huggingface")
    result = forge_cli(
        "stats",
        "--after-chat",
        "Say hi.",
        "--max-tokens",
        "4",
        "--json",
        "-c",
        str(config),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout)["models"]
    local = models[f"huggingface:{EMBEDDED_MODEL}"]
    assert (local["requests"], local["successes"]) == (1, 1)
    assert local["latency_ms"]["p50"] > 0
    (ollama,) = [series for key, series in models.items() if key.startswith("ollama:")]
    assert ollama["successes"] == 0 and sum(ollama["failures"].values()) >= 1
