"""Running the ``forge`` command in the CLI tests: in a fresh process, or in process with typer.

Both ways run without the caller's API keys and ``FORGE_CONFIG``, so only the config a test
writes decides what forge does. `NO_KEY_ENV` is an API-key variable that is never set: a cloud
provider configured with it is reported as having no key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from typer.testing import Result

NO_KEY_ENV = "FORGE_TEST_CLI_UNSET_KEY"


def forge_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m forge_core.cli ARGS`` in ``cwd`` with no ``*_API_KEY`` variables."""
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


def invoke(*args: str) -> Result:
    """Run the typer app in this process, with `NO_KEY_ENV` set to nothing."""
    from forge_core.cli import app
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(args), env={NO_KEY_ENV: ""})


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` to ``path`` as YAML and return ``path``."""
    path.write_text(yaml.safe_dump(data))
    return path


def ollama_config(path: Path, base_url: str, *extra_order: str, **sections: Any) -> Path:
    """A forge.yaml with Ollama at ``base_url`` (preferring ``tiny:1b``) first in the order,
    then ``extra_order``; OpenAI's key is `NO_KEY_ENV`. ``sections`` are further top-level keys."""
    data: dict[str, Any] = {
        "providers": {
            "local": {"ollama": {"base_url": base_url, "preferred_models": ["tiny:1b"]}},
            "cloud": {"openai": {"api_key_env": NO_KEY_ENV}},
            "fallback": {"order": ["ollama", *extra_order]},
        },
        **sections,
    }
    return write_config(path, data)
