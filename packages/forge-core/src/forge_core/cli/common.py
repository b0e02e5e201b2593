"""What the ``forge`` commands share: the ``--config`` and ``--json`` options, the `Forge` a
command runs on, the deployments of the fallback order with their backends, and what an
OpenAI-compatible backend says about its dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forge_core.backends.base import ChatBackend, DialectReport
from forge_core.config.deployments import DeploymentSpec
from forge_core.errors import ForgeError
from forge_core.forge import Forge

__all__ = [
    "ConfigOption",
    "JsonOption",
    "forge_or_exit",
    "identify_dialect",
    "known_dialect",
    "ordered_backends",
]

#: ``--config`` / ``-c``: the forge.yaml to use.
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to forge.yaml (default: search).")
]
#: ``--json``: machine-readable output.
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def forge_or_exit(config: Path | None) -> Forge:
    """The `Forge` of ``config``; an invalid config is one line on stderr and exit code 1."""
    try:
        return Forge(config)
    except ForgeError as exc:
        typer.echo(f"forge: {exc}", err=True)
        raise typer.Exit(1) from None


def ordered_backends(forge: Forge) -> list[tuple[DeploymentSpec, ChatBackend]]:
    """The deployments of the fallback order (kinds expanded), each with its backend."""
    backends = forge.router.backends
    deployments = forge.config.providers.deployments
    return [
        (deployments[name], backends[name])
        for name in forge.config.providers.ordered_names()
        if name in backends
    ]


def known_dialect(backend: ChatBackend) -> str | None:
    """The dialect of an OpenAI-compatible backend if already known (no network call)."""
    return backend.dialect if isinstance(backend, DialectReport) else None


def identify_dialect(backend: ChatBackend) -> str | None:
    """The dialect of an OpenAI-compatible backend, identifying its server once if needed."""
    if isinstance(backend, DialectReport):
        return backend.dialect_name()
    return None
