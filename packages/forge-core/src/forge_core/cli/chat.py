"""``forge chat``: one question, the answer on stdout and the route that served it on stderr."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from forge_core.cli.common import ConfigOption, JsonOption
from forge_core.errors import ForgeError
from forge_core.forge import Forge
from forge_core.types import RouteTrail

__all__ = ["chat"]


def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="provider:model (e.g. huggingface:smollm2-135m)."),
    ] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they arrive.")] = False,
    config: ConfigOption = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Longest answer, in tokens.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    local_only: Annotated[
        bool, typer.Option("--local-only", help="Never call a cloud provider.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Ask one question; the answer goes to stdout, the provider that served it to stderr.

    Examples:

      forge chat "Name three colours." --max-tokens 32

      forge chat "Hi" --model ollama:llama3.1:8b --stream --local-only
    """
    params = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "local_only": True if local_only else None,
    }
    try:
        forge = Forge(config)
        if as_json:
            answer = forge.chat(prompt, **params)
            typer.echo(answer.model_dump_json(indent=2))
            return
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
    served = route.deployment or route.provider.value
    typer.echo(f"served by {served}:{route.model}{timing}", err=True)
    if len(route.attempts) > 1 or route.drops:
        typer.echo("route:\n" + route.describe(), err=True)
