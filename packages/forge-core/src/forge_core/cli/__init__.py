"""The ``forge`` command line: the typer app, its commands registered in help order, and
`main`, the ``forge`` script's entry point.

Each command lives in a module of its own (`forge_core.cli.chat`, `forge_core.cli.config`,
`forge_core.cli.health`, `forge_core.cli.models`, `forge_core.cli.pull`, `forge_core.cli.warm`,
`forge_core.cli.stats`); what they share is `forge_core.cli.common` and
`forge_core.cli.format`.
"""

from __future__ import annotations

import typer

from forge_core.cli import chat, config, health, models, pull, stats, warm

__all__ = ["app", "config_app", "main"]

#: The ``forge`` command.
app = typer.Typer(
    name="forge",
    no_args_is_help=True,
    add_completion=False,
)

#: ``forge config``: its subcommands.
config_app = typer.Typer(help="Inspect and validate forge.yaml.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def _root() -> None:
    """forge: a local-first LLM provider router.

    Examples:

      forge chat "Why is the sky blue?"

      forge chat "Hello" --model huggingface:smollm2-135m --stream

      forge config check ./forge.yaml

      forge health

      forge models --json

      forge pull llama3.2
    """


app.command()(chat.chat)
config_app.command("check")(config.config_check)
app.command()(health.health)
app.command()(models.models)
app.command()(pull.pull)
app.command()(warm.warm)
app.command()(stats.stats)


def main() -> None:
    """Entry point of the ``forge`` script."""
    app()
