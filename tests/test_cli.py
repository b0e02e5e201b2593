"""`forge chat` end to end, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from forge_test_support import LocalServer, closed_port_url


def forge_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environment.pop("FORGE_CONFIG", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "forge_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=240,
    )


def write_config(path: Path, data: dict) -> Path:  # type: ignore[type-arg]
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.local_server
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


@pytest.mark.local_model
def test_chat_stream_on_the_embedded_model_with_the_shipped_config(tmp_path: Path) -> None:
    repo_config = Path(__file__).resolve().parents[1] / "forge.yaml"
    result = forge_cli(
        "chat",
        "Say hi.",
        "--stream",
        "--max-tokens",
        "8",
        "--model",
        "huggingface:gemma-3-270m",
        "--config",
        str(repo_config),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "served by huggingface:gemma-3-270m" in result.stderr


def test_bad_config_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "forge.yaml"
    config.write_text("model_preferences:\n  local_first: maybe\n")
    result = forge_cli("chat", "hi", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr
    assert "model_preferences.local_first" in result.stderr


def test_every_provider_down_exits_1_listing_them(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {"ollama": {"base_url": closed_port_url()}},
                "fallback": {"order": ["ollama", "openai"]},
            }
        },
    )
    result = forge_cli("chat", "hi", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "every provider failed" in result.stderr
    assert "connection refused" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr


def test_config_check_prints_resolved_config_without_secrets(tmp_path: Path) -> None:
    from forge_core.cli import app
    from typer.testing import CliRunner

    config = write_config(
        tmp_path / "forge.yaml",
        {"providers": {"cloud": {"openai": {"api_key_env": "FORGE_TEST_OPENAI_KEY"}}}},
    )
    secret = "sk-forge-cli-canary-000111"
    result = CliRunner().invoke(
        app, ["config", "check", str(config), "--json"], env={"FORGE_TEST_OPENAI_KEY": secret}
    )
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["providers"]["cloud"]["openai"]["api_key"] == "${FORGE_TEST_OPENAI_KEY} (set)"
    assert data["providers"]["local"]["ollama"]["base_url"] == "http://localhost:11434"
    assert secret not in result.output


def test_config_check_points_at_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "forge.yaml"
    config.write_text("providers:\n  fallback:\n    order: [ollama, gemini]\n")
    result = forge_cli("config", "check", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{config}: providers.fallback.order[1]" in result.stderr
    assert "'gemini'" in result.stderr


@pytest.mark.local_server
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
