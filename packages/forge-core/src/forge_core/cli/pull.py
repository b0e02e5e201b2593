"""``forge pull``: a model pulled into a configured Ollama host, with a progress bar per layer."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from forge_core.backends import PullProgress, ollama_admin
from forge_core.cli.common import ConfigOption, forge_or_exit
from forge_core.cli.format import console
from forge_core.errors import ProviderError
from forge_core.types import Provider

__all__ = ["pull"]


def pull(
    model: Annotated[str, typer.Argument(help="Ollama model to pull, e.g. llama3.2:1b.")],
    host: Annotated[
        str | None,
        typer.Option("--host", help="The Ollama deployment (a hosts: name); default: the first."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Pull a model into the configured Ollama, with a progress bar per layer.

    With several Ollama ``hosts``, ``--host NAME`` says which; without it, the first listed.

    Examples:

      forge pull llama3.2:1b

      forge pull nomic-embed-text --config ./forge.yaml

      forge pull llama3.1:8b --host gpu-box
    """
    forge = forge_or_exit(config)
    names = forge.config.providers.named(Provider.OLLAMA.value) or []
    if host is not None and host not in names:
        known = ", ".join(names) or "none"
        typer.echo(f"forge: {host!r} is not an Ollama deployment (known: {known})", err=True)
        raise typer.Exit(1)
    target = host if host is not None else (names[0] if names else None)
    ollama = ollama_admin(forge.router.backends.get(target)) if target is not None else None
    if ollama is None:
        typer.echo("forge: no Ollama provider is configured", err=True)
        raise typer.Exit(1)
    err_console = console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    layers: dict[str, TaskID] = {}
    with Progress(*columns, console=err_console, transient=False) as progress:

        def show(line: PullProgress) -> None:
            if line.digest and line.total:
                task = layers.get(line.digest)
                if task is None:
                    task = progress.add_task(line.digest.removeprefix("sha256:")[:12])
                    layers[line.digest] = task
                progress.update(task, total=line.total, completed=line.completed or 0)
            elif not line.digest:
                progress.console.print(line.status)

        try:
            ollama.pull(model, show)
        except ProviderError as exc:
            progress.stop()
            typer.echo(f"forge: pull {model} from {ollama.base_url} failed: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"pulled {model}")
