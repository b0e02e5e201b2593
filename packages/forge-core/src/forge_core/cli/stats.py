"""``forge stats``: per-deployment metrics of this process (after ``--after-chat``), as
tables, JSON or Prometheus text."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from forge_core.cli.common import ConfigOption, JsonOption, forge_or_exit
from forge_core.cli.format import console, host, limit, ms, shared_state_line
from forge_core.errors import ForgeError
from forge_core.observability.prometheus import prometheus_text

__all__ = ["stats"]


def stats(
    after_chat: Annotated[
        str | None,
        typer.Option("--after-chat", help="Send this prompt first, then show the stats."),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="Longest answer for --after-chat.")
    ] = 16,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    prometheus: Annotated[
        bool,
        typer.Option("--prometheus", help="Print Prometheus text exposition (format 0.0.4)."),
    ] = False,
) -> None:
    """Per-deployment metrics (``deployment:model``): requests, successes, failures by kind, latency, tokens, spend,
    circuits; and per deployment the requests in flight, the models loading and the recent
    latency (a moving average: first token of a stream, else the whole answer) balancing uses.

    forge keeps its metrics in the process that routes the calls, so a bare ``forge stats``
    can only show an empty router (and says so). ``--after-chat PROMPT`` routes one request
    first and shows what it recorded, fallbacks included. In your own program, read
    ``Forge.stats()`` (or ``forge_core.prometheus_text(forge.stats())`` for Prometheus).

    Examples:

      forge stats --after-chat "Say hi." --max-tokens 8

      forge stats --after-chat "Hi" --json

      forge stats --after-chat "Hi" --prometheus
    """
    forge = forge_or_exit(config)
    if after_chat is not None:
        try:
            forge.chat(after_chat, max_tokens=max_tokens)
        except ForgeError as exc:
            # A failed request is still recorded: the stats show why it failed.
            typer.echo(f"forge: {exc}", err=True)
    elif forge.router.shared is None:
        typer.echo(
            "forge: stats are per process and this one has routed nothing yet; "
            "use --after-chat PROMPT, or Forge.stats() in your program",
            err=True,
        )
    data = forge.stats()
    if prometheus:
        sys.stdout.write(prometheus_text(data))
        return
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    table = Table(
        "deployment:model", "requests", "ok", "failures", "p50 ms", "p50 ttft ms", "tokens", "USD"
    )
    for key, series in data["models"].items():
        failures = ", ".join(f"{kind}={n}" for kind, n in series["failures"].items()) or "-"
        table.add_row(
            key,
            str(series["requests"]),
            str(series["successes"]),
            failures,
            ms(series["latency_ms"]["p50"]),
            ms(series["ttft_ms"]["p50"]),
            str(series["input_tokens"] + series["output_tokens"]),
            f"{series['spend_usd']:.6f}",
        )
    out = console()
    state = data.get("state")
    if not data["models"] and state is None:
        out.print("no requests routed in this process")
        return
    if data["models"]:
        out.print(table)
    else:
        out.print("no requests routed in this process (metrics are per process)")
    if state is not None:
        out.print(shared_state_line(state))
    circuits = Table("endpoint", "circuit", "consecutive failures", "times opened")
    for endpoint, circuit in data["circuits"].items():
        circuits.add_row(
            endpoint,
            circuit["state"],
            str(circuit["consecutive_failures"]),
            str(circuit["times_opened"]),
        )
    out.print(circuits)
    if data.get("budgets"):
        budgets = Table("deployment", "rpm", "requests in last 60 s", "tpm", "tokens in last 60 s")
        for name, budget in data["budgets"].items():
            budgets.add_row(
                name,
                limit(budget["rpm"]),
                str(budget["requests_in_window"]),
                limit(budget["tpm"]),
                str(budget["tokens_in_window"]),
            )
        out.print(budgets)
    deployments = Table("deployment", "host", "in flight", "loading", "recent latency ms")
    for name, load in data["deployments"].items():
        latency = ", ".join(f"{model} {ms:.0f}" for model, ms in load["latency_ms"].items())
        deployments.add_row(
            name,
            host(load["endpoint"]),
            str(load["in_flight"])
            + (f" (fleet {load['fleet_in_flight']})" if "fleet_in_flight" in load else ""),
            ", ".join(load["loading"]) or "-",
            latency or "-",
        )
    out.print(deployments)
    usage = data["usage"]
    share = usage["local_share"]
    out.print(
        f"spend ${usage['spend_usd']:.6f}; tokens served locally: "
        + ("-" if share is None else f"{share:.0%}")
        + (
            f"; {usage['unpriced_tokens']} cloud tokens without a price"
            if usage["unpriced_tokens"]
            else ""
        )
    )
