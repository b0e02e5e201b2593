"""How the ``forge`` commands print: the console, table cells and shared lines.

Cells: a status in colour, byte sizes, yes/no (``-`` when unknown), limits and milliseconds,
an endpoint's ``host:port``, a deployment with its kind; and the line that says where the
fleet's shared routing state is.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

__all__ = [
    "console",
    "deployment_label",
    "host",
    "human_bytes",
    "limit",
    "ms",
    "shared_state_line",
    "styled",
    "yes_no",
]


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr)."""
    # Wide enough that reasons are not cut when output is piped or captured.
    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 200)


def styled(status: str) -> str:
    """A health status in colour: up green, warming yellow, anything else red."""
    colour = {"up": "green", "warming": "yellow"}.get(status, "red")
    return f"[{colour}]{status}[/{colour}]"


def human_bytes(size: int | None) -> str:
    """A byte count in B, KB, MB, GB or TB (``-`` when unknown)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def yes_no(value: bool | None) -> str:
    """``yes``, ``no``, or ``-`` when unknown."""
    return "-" if value is None else ("yes" if value else "no")


def limit(value: int | None) -> str:
    """A configured limit, ``-`` when there is none."""
    return "-" if value is None else str(value)


def ms(value: float | None) -> str:
    """Milliseconds, rounded (``-`` when unknown)."""
    return "-" if value is None else f"{value:.0f}"


def host(endpoint: str) -> str:
    """``host:port`` of an HTTP endpoint (in-process models: their description)."""
    parts = urlsplit(endpoint)
    return parts.netloc or endpoint


def deployment_label(row: Mapping[str, Any]) -> str:
    """A row's deployment, with its kind when the name does not say it (``gpu-box (ollama)``)."""
    name, kind = row["deployment"], row["provider"]
    return name if name == kind else f"{name} ({kind})"


def shared_state_line(state: Mapping[str, Any]) -> str:
    """Where the fleet's routing state is and whether it answers, in one line."""
    answer = "answers" if state["available"] else "[red]unreachable[/red]: this process's own state"
    return (
        f"shared state: {state['backend']} at {state['url']} ({answer}); circuits are the fleet's"
    )
