"""``forge health`` and ``forge models`` show the dialect of each OpenAI-compatible endpoint:
the configured one, or the one its server's self-description names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dialect_servers import SELF_DESCRIPTIONS, SelfDescribingServer
from forge_cli_runner import invoke, write_config


def _config(path: Path, base_url: str, **openai: Any) -> Path:
    spec = {"base_url": base_url, "api_key_env": None, "default_model": "m", **openai}
    data = {"providers": {"cloud": {"openai": spec}, "fallback": {"order": ["openai"]}}}
    return write_config(path / "forge.yaml", data)


@pytest.mark.parametrize("server_kind", ["llama-cpp", "llama-server", "vllm", "lmstudio"])
def test_health_shows_the_dialect_the_server_describes(tmp_path: Path, server_kind: str) -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS[server_kind]) as server:
        config = _config(tmp_path, server.base_url)
        result = invoke("health", "--json", "-c", str(config))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["providers"]
    assert (row["provider"], row["status"], row["dialect"]) == ("openai", "up", server_kind)


def test_health_shows_a_configured_dialect_without_asking_the_server(tmp_path: Path) -> None:
    with SelfDescribingServer(SELF_DESCRIPTIONS["llama-server"]) as server:
        config = _config(tmp_path, server.base_url, dialect="vllm")
        result = invoke("health", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "vllm" in result.output
    assert server.probes == ["/v1/models"]  # the health probe only


def test_models_lists_each_model_with_its_endpoints_dialect(tmp_path: Path) -> None:
    describes = SELF_DESCRIPTIONS["llama-cpp"]
    with SelfDescribingServer(describes, models=("gemma", "smol")) as server:
        config = _config(tmp_path, server.base_url)
        as_json = invoke("models", "--json", "-c", str(config))
        table = invoke("models", "-c", str(config))
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert [(row["model"], row["dialect"]) for row in rows] == [
        ("gemma", "llama-cpp"),
        ("smol", "llama-cpp"),
    ]
    assert "dialect" in table.output and "llama-cpp" in table.output
