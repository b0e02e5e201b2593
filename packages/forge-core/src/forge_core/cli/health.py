"""``forge health``: one row per deployment of the fallback order, with its host, status,
probe latency, circuit, dialect and why it is not up; and where shared state is."""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.table import Table

from forge_core.backends.base import ChatBackend, InProcessRuntime
from forge_core.cli.common import (
    ConfigOption,
    JsonOption,
    forge_or_exit,
    identify_dialect,
    known_dialect,
    ordered_backends,
)
from forge_core.cli.format import console, deployment_label, host, shared_state_line, styled
from forge_core.config.deployments import DeploymentSpec
from forge_core.errors import (
    AuthenticationFailed,
    MissingDependency,
    ModelNotFound,
    ProviderError,
)
from forge_core.forge import Forge
from forge_core.routing.health import HealthStatus, endpoint_of

__all__ = ["health"]


def health(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One row per deployment in the fallback order (each Ollama host and named endpoint its
    own, with its host): status, probe latency, circuit state, dialect, and why not up.

    Status is up, warming (a request forge sent is waiting there for its model to load),
    down, no key (its API key env var is unset) or not installed (a missing extra or model
    file). The dialect is how an OpenAI-compatible endpoint is spoken to:
    configured, or identified from what the server says about itself (docs/providers.md).
    Probes are cheap and never billed. Exit code 1 when no provider can serve.

    Examples:

      forge health

      forge health --json --config ./forge.yaml
    """
    forge = forge_or_exit(config)
    rows = [_provider_health(forge, spec, backend) for spec, backend in ordered_backends(forge)]
    serving = any(row["status"] in ("up", "warming") for row in rows)
    state = _shared_state_view(forge)
    if as_json:
        report: dict[str, Any] = {"providers": rows, "can_serve": serving}
        if state is not None:
            report["state"] = state
        typer.echo(json.dumps(report, indent=2))
    else:
        if state is not None:
            console().print(shared_state_line(state))
        table = Table("deployment", "host", "status", "latency", "circuit", "dialect", "reason")
        for row in rows:
            latency = f"{row['latency_ms']:.0f} ms" if row["latency_ms"] is not None else "-"
            table.add_row(
                deployment_label(row),
                host(row["endpoint"]),
                styled(row["status"]),
                latency,
                row["circuit"],
                row["dialect"] or "-",
                row["reason"],
            )
        console().print(table)
    if not serving:
        typer.echo("forge: no provider can serve a request", err=True)
        raise typer.Exit(1)


def _shared_state_view(forge: Forge) -> dict[str, Any] | None:
    """Where the fleet's routing state is and whether it answers (None: memory state)."""
    shared = forge.router.shared
    if shared is None:
        return None
    # A read first, so "answers" is about now, not about the last call.
    shared.breakers()
    return {"backend": "redis", "url": shared.url, "available": shared.available()}


def _provider_health(forge: Forge, spec: DeploymentSpec, backend: ChatBackend) -> dict[str, Any]:
    row: dict[str, Any] = {
        "deployment": spec.name,
        "provider": spec.kind.value,
        "endpoint": endpoint_of(backend),
        "status": "up",
        "latency_ms": None,
        "circuit": forge.router.breaker_for(backend).state.value,
        "dialect": known_dialect(backend),
        "reason": "",
    }
    try:
        backend.check_ready(backend.default_model())
    except AuthenticationFailed as exc:
        return {**row, "status": "no key", "reason": str(exc)}
    except (MissingDependency, ModelNotFound) as exc:
        return {**row, "status": "not installed", "reason": str(exc)}
    except ProviderError as exc:
        return {**row, "status": "down", "reason": str(exc)}
    started = time.perf_counter()
    if isinstance(backend, InProcessRuntime):
        # No endpoint to probe: the runtime itself is checked (a load and one token in a
        # child process, once), so a build that crashes on this CPU shows as down.
        verdict, reason = backend.runtime_verdict()
        elapsed = (time.perf_counter() - started) * 1000
        loaded = "loaded" if backend.loaded_model_names() else "loads on first request"
        where = backend.isolation_description()
        return {
            **row,
            "status": verdict,
            "latency_ms": elapsed,
            "reason": f"{where}, {loaded}: {reason}",
        }
    status = forge.router.check_health(backend)
    elapsed = (time.perf_counter() - started) * 1000
    row.update(status=status.value, latency_ms=elapsed)
    if status is HealthStatus.DOWN:
        row["reason"] = f"health probe to {row['endpoint']} failed (not running or unreachable)"
    else:
        loading = forge.router.load.loading(row["endpoint"])
        if loading:
            row["reason"] = f"loading {', '.join(loading)} for a request forge sent"
        row["dialect"] = identify_dialect(backend)
    return row
