"""Every cookbook recipe runs end to end, as a user would run it (embedded model, no keys).

The cookbook's checks that run no model are in test_cookbook.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.local_model

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "cookbook").glob("*.py"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("FORGE_CONFIG", None)
    env.update(extra)
    return env


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_runs(recipe: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(recipe)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr
