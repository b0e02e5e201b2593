"""The ``forge`` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from forge_core._config import ForgeConfig, load_config
from forge_core._exceptions import ForgeError
from forge_core._forge import Forge
from forge_core._types import RouteTrail

app = typer.Typer(
    name="forge",
    no_args_is_help=True,
    add_completion=False,
)


config_app = typer.Typer(help="Inspect and validate forge.yaml.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to forge.yaml (default: search).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def _root() -> None:
    """forge: a local-first LLM provider router.

    Examples:

      forge chat "Why is the sky blue?"

      forge chat "Hello" --model huggingface:gemma-3-270m --stream

      forge config check ./forge.yaml
    """


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="provider:model (e.g. huggingface:gemma-3-270m)."),
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


@config_app.command("check")
def config_check(
    path: Annotated[
        Path | None, typer.Argument(help="forge.yaml to check (default: the one forge finds).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a config and print it resolved (env and defaults applied, keys never shown).

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
    if as_json:
        typer.echo(json.dumps(resolved, indent=2))
    else:
        typer.echo(f"# {config.source or 'no file found: built-in defaults'} is valid")
        typer.echo(yaml.safe_dump(resolved, sort_keys=False).rstrip())


def _resolved_view(config: ForgeConfig) -> dict[str, Any]:
    """The config as plain data, with each API key env var shown as set or not (never its value)."""
    data = config.model_dump(mode="json")
    for name, section in data["providers"]["cloud"].items():
        env_name = section.get("api_key_env")
        if env_name:
            state = "set" if os.environ.get(env_name) else "not set"
            section["api_key"] = f"${{{env_name}}} ({state})"
        data["providers"]["cloud"][name] = section
    return data


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
