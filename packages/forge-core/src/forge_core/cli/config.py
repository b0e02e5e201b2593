"""``forge config check``: a config validated and printed resolved, with its deployments and
the order they give a request that names no model; keys never shown."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from forge_core.cli.common import JsonOption
from forge_core.config.loader import load_config
from forge_core.config.schema import ForgeConfig
from forge_core.errors import ForgeError
from forge_core.forge import Forge
from forge_core.routing.health import endpoint_of
from forge_core.state.base import mask_url
from forge_core.types import ChatRequest

__all__ = ["config_check"]


def config_check(
    path: Annotated[
        Path | None, typer.Argument(help="forge.yaml to check (default: the one forge finds).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a config and print it resolved (env and defaults applied, keys never shown),
    with its deployments and the order they give a request that names no model.

    Exit code 1 and the file, key path and expected value when it is invalid.

    Examples:

      forge config check

      forge config check ./forge.yaml --json
    """
    try:
        config = load_config(path)
    except ForgeError as exc:
        typer.echo(f"forge: {exc}", err=True)
        raise typer.Exit(1) from None
    resolved = _resolved_view(config)
    resolved["deployments"] = _deployments_view(config)
    if as_json:
        typer.echo(json.dumps(resolved, indent=2))
    else:
        typer.echo(f"# {config.source or 'no file found: built-in defaults'} is valid")
        typer.echo(yaml.safe_dump(resolved, sort_keys=False).rstrip())


def _resolved_view(config: ForgeConfig) -> dict[str, Any]:
    """The config as plain data, with each API key env var shown as set or not (never its value)
    and the Redis URL's password masked."""
    data = config.model_dump(mode="json")
    for name, section in data["providers"]["cloud"].items():
        env_name = section.get("api_key_env")
        if env_name:
            state = "set" if os.environ.get(env_name) else "not set"
            section["api_key"] = f"${{{env_name}}} ({state})"
        data["providers"]["cloud"][name] = section
    state = data["routing"]["state"]
    if state.get("url"):
        state["url"] = mask_url(state["url"])
    return data


def _deployments_view(config: ForgeConfig) -> dict[str, Any]:
    """Each deployment (kind, local, endpoint) and the route planned for a sample request.

    Planning makes no network call; circuits and health are unknown here, so the sample shows
    what the config and the environment (keys, installed extras) allow.
    """
    forge = Forge(config)
    backends = forge.router.backends
    listed = {
        name: {
            "kind": spec.kind.value,
            "local": spec.local,
            "endpoint": endpoint_of(backends[name]) if name in backends else None,
        }
        for name, spec in config.providers.deployments.items()
    }
    candidates, drops = forge.router.plan(ChatRequest(messages=[]))
    return {
        "by_name": listed,
        "sample_order": [candidate.key for candidate in candidates],
        "sample_skipped": {
            f"{drop.deployment or drop.provider.value}:{drop.model or '-'}": drop.reason
            for drop in drops
        },
    }
