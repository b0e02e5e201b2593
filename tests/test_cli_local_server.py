"""`forge chat` and `forge models` end to end against llama-cpp-python's real server.

The commands' other tests are in test_cli.py (no model) and test_cli_local_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from forge_cli_runner import NO_KEY_ENV, forge_cli, invoke, write_config
from forge_test_support import LocalServer, closed_port_url

pytestmark = pytest.mark.local_server


def test_chat_prints_answer_and_names_the_provider_on_stderr(
    local_server: LocalServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {
                    "ollama": {"base_url": closed_port_url()},
                },
                "cloud": {
                    "openai": {
                        "base_url": local_server.openai_base_url,
                        "api_key_env": None,
                        "default_model": local_server.model,
                    }
                },
                "fallback": {"order": ["ollama", "openai"]},
            }
        },
    )
    result = forge_cli(
        "chat", "Say hi.", "--max-tokens", "8", "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "served by openai:" in result.stderr
    assert "ollama" in result.stderr and "connection refused" in result.stderr


def test_chat_json_output(local_server: LocalServer, tmp_path: Path) -> None:
    import json

    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {
                    "ollama": {
                        "base_url": local_server.base_url,
                        "preferred_models": [local_server.model],
                    }
                },
                "fallback": {"order": ["ollama"]},
            }
        },
    )
    result = forge_cli("chat", "Hi", "--json", "--max-tokens", "4", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["provider"] == "ollama"
    assert data["route"]["attempts"][0]["ok"] is True


def test_models_lists_a_cloud_style_endpoint_only_when_it_can_be_called(
    local_server: LocalServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {"ollama": {"base_url": closed_port_url()}},
                "cloud": {
                    "openai": {"base_url": local_server.openai_base_url, "api_key_env": None},
                    "openrouter": {"api_key_env": NO_KEY_ENV},
                },
                "fallback": {"order": ["ollama", "openai", "openrouter"]},
            }
        },
    )
    result = invoke("models", "--json", "-c", str(config))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(row["provider"], row["model"]) for row in rows] == [("openai", local_server.model)]
    assert "skipped ollama" in result.stderr
    assert "skipped openrouter" in result.stderr and NO_KEY_ENV in result.stderr
