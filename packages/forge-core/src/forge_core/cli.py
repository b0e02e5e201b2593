"""The ``forge`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from forge_core._exceptions import ForgeError
from forge_core._forge import Forge
from forge_core._types import RouteTrail

app = typer.Typer(
    name="forge",
    help="forge: a local-first LLM provider router.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """forge: a local-first LLM provider router."""


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="provider:model (e.g. huggingface:gemma-3-270m)."),
    ] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they arrive.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Path to forge.yaml.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Longest answer, in tokens.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    local_only: Annotated[
        bool, typer.Option("--local-only", help="Never call a cloud provider.")
    ] = False,
) -> None:
    """Ask one question; the answer goes to stdout, the provider that served it to stderr."""
    params = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "local_only": True if local_only else None,
    }
    try:
        forge = Forge(config)
        if stream:
            route = None
            for chunk in forge.stream(prompt, **params):
                sys.stdout.write(chunk.content)
                sys.stdout.flush()
                route = chunk.route or route
            sys.stdout.write("\n")
        else:
            answer = forge.chat(prompt, **params)
            sys.stdout.write((answer.content or "") + "\n")
            route = answer.route
    except ForgeError as exc:
        typer.echo(f"forge: {exc}", err=True)
        raise typer.Exit(1) from None
    _report(route)


def _report(route: RouteTrail | None) -> None:
    if route is None or route.provider is None:
        return
    timing = f" in {route.total_ms:.0f} ms" if route.total_ms is not None else ""
    typer.echo(f"served by {route.provider.value}:{route.model}{timing}", err=True)
    if len(route.attempts) > 1 or route.drops:
        typer.echo("route:\n" + route.describe(), err=True)


def main() -> None:
    """Entry point of the ``forge`` script."""
    app()


if __name__ == "__main__":
    main()
