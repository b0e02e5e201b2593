"""The cookbook's checks that need no model: recipes exist, the team config checks.

The recipes themselves run on the embedded model in test_cookbook_local_model.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "cookbook").glob("*.py"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("FORGE_CONFIG", None)
    env.update(extra)
    return env


def test_the_cookbook_has_recipes() -> None:
    assert len(RECIPES) >= 4


def test_the_cookbook_readme_lists_every_recipe() -> None:
    readme = (REPO / "cookbook" / "README.md").read_text()
    unlisted = [recipe.name for recipe in RECIPES if f"`{recipe.name}`" not in readme]
    assert unlisted == []


def test_team_config_checks_with_its_host_set_and_names_the_missing_one() -> None:
    command = [
        sys.executable,
        "-m",
        "forge_core.cli",
        "config",
        "check",
        "cookbook/team-forge.yaml",
    ]
    ok = subprocess.run(
        command, cwd=REPO, env=clean_env(OLLAMA_HOST="gpu-box"), capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "http://gpu-box:11434" in ok.stdout
    assert "${OPENAI_API_KEY} (not set)" in ok.stdout

    env = clean_env()
    env.pop("OLLAMA_HOST", None)
    missing = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert missing.returncode == 1
    assert "OLLAMA_HOST" in missing.stderr
    assert "providers.local.ollama.base_url" in missing.stderr
