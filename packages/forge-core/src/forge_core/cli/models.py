"""``forge models``: every model forge can see, across deployments, in one table.

Each deployment answers for itself: an in-process backend lists its configured models, an
Ollama host what it has pulled and loaded, any other endpoint its ``/models``.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from forge_core.backends import ChatBackend, ollama_admin
from forge_core.backends.base import InProcessRuntime
from forge_core.cli.common import (
    ConfigOption,
    JsonOption,
    forge_or_exit,
    identify_dialect,
    ordered_backends,
)
from forge_core.cli.format import console, deployment_label, host, human_bytes, yes_no
from forge_core.config.deployments import DeploymentSpec
from forge_core.errors import ProviderError
from forge_core.forge import Forge
from forge_core.routing.health import HealthStatus, endpoint_of

__all__ = ["models"]


def models(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every model forge can see, across providers, in one table.

    Ollama: pulled models (/api/tags), their context window and tools (/api/show) and which
    are loaded (/api/ps). huggingface: the configured in-process models. Cloud providers are
    listed only when their API key is set (their /models is unbilled), with the dialect their
    endpoint speaks (configured, or identified from what the server says about itself).
    Providers that are down or unconfigured are named on stderr and skipped.

    Examples:

      forge models

      forge models --json | jq '.[].model'
    """
    forge = forge_or_exit(config)
    rows: list[dict[str, Any]] = []
    for spec, backend in ordered_backends(forge):
        try:
            rows.extend(_models_of(forge, spec, backend))
        except ProviderError as exc:
            typer.echo(f"forge: skipped {spec.name}: {exc}", err=True)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("deployment", "host", "model", "size", "context", "tools", "loaded", "dialect")
    for row in rows:
        table.add_row(
            deployment_label(row),
            host(row["endpoint"]),
            row["model"],
            human_bytes(row["size_bytes"]),
            str(row["context_window"] or "-"),
            yes_no(row["tools"]),
            yes_no(row["loaded"]),
            row.get("dialect") or "-",
        )
    console().print(table)


def _models_of(forge: Forge, spec: DeploymentSpec, backend: ChatBackend) -> list[dict[str, Any]]:
    if isinstance(backend, InProcessRuntime):
        return [
            _model_row(
                spec,
                backend,
                model.name,
                size=model.size_bytes,
                context=model.capabilities.context_window,
                tools=model.capabilities.tools,
                loaded=model.loaded,
            )
            for model in backend.in_process_models()
        ]
    backend.check_ready(backend.default_model())
    if forge.router.check_health(backend) is HealthStatus.DOWN:
        raise ProviderError(f"{endpoint_of(backend)} does not answer", provider=spec.kind.value)
    admin = ollama_admin(backend)
    if admin is not None:
        running = {model.name for model in admin.running_models()}
        rows = []
        for model in admin.pulled_models():
            try:
                shown = admin.show(model.name)
            except ProviderError:
                context, tools = None, None
            else:
                context, tools = shown.context_length, "tools" in shown.capabilities
            rows.append(
                _model_row(
                    spec,
                    backend,
                    model.name,
                    size=model.size,
                    context=context,
                    tools=tools,
                    loaded=model.name in running,
                )
            )
        return rows
    lister = getattr(backend, "list_models", None)
    if lister is None:
        return []
    dialect = identify_dialect(backend)
    return [
        _model_row(
            spec,
            backend,
            info.id,
            size=None,
            context=info.context_window,
            tools=info.capabilities.tools if info.capabilities else None,
            loaded=None,
            dialect=dialect,
        )
        for info in lister()
    ]


def _model_row(
    spec: DeploymentSpec,
    backend: ChatBackend,
    model: str,
    *,
    size: int | None,
    context: int | None,
    tools: bool | None,
    loaded: bool | None,
    dialect: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "deployment": spec.name,
        "provider": spec.kind.value,
        "endpoint": endpoint_of(backend),
        "model": model,
        "size_bytes": size,
        "context_window": context,
        "tools": tools,
        "loaded": loaded,
    }
    if dialect is not None:
        # Only OpenAI-compatible endpoints have a dialect.
        row["dialect"] = dialect
    return row
