"""The ``forge`` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from forge_core.backends import ChatBackend, PullProgress, ollama_admin
from forge_core.backends.http.openai.client import OpenAICompatibleClient
from forge_core.backends.local.backend import HuggingFaceBackend
from forge_core.config.deployments import DeploymentSpec
from forge_core.config.loader import load_config
from forge_core.config.local_models import EMBEDDED_MODEL, resolve_local_model
from forge_core.config.schema import ForgeConfig
from forge_core.errors import (
    AuthenticationFailed,
    ForgeError,
    MissingDependency,
    ModelNotFound,
    ProviderError,
)
from forge_core.forge import Forge
from forge_core.observability.prometheus import prometheus_text
from forge_core.routing.health import HealthStatus, endpoint_of
from forge_core.routing.load import in_listing
from forge_core.state.base import mask_url
from forge_core.types import ChatRequest, Provider, RouteTrail

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

      forge chat "Hello" --model huggingface:smollm2-135m --stream

      forge config check ./forge.yaml

      forge health

      forge models --json

      forge pull llama3.2
    """


@app.command()
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


@config_app.command("check")
def config_check(
    path: Annotated[
        Path | None, typer.Argument(help="forge.yaml to check (default: the one forge finds).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a config and print it resolved (env and defaults applied, keys never shown),
    with its deployments and the order they give a request that names no model.

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
    resolved["deployments"] = _deployments_view(config)
    if as_json:
        typer.echo(json.dumps(resolved, indent=2))
    else:
        typer.echo(f"# {config.source or 'no file found: built-in defaults'} is valid")
        typer.echo(yaml.safe_dump(resolved, sort_keys=False).rstrip())


@app.command()
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
    forge = _forge_or_exit(config)
    rows = [_provider_health(forge, spec, backend) for spec, backend in _ordered_backends(forge)]
    serving = any(row["status"] in ("up", "warming") for row in rows)
    state = _shared_state_view(forge)
    if as_json:
        report: dict[str, Any] = {"providers": rows, "can_serve": serving}
        if state is not None:
            report["state"] = state
        typer.echo(json.dumps(report, indent=2))
    else:
        if state is not None:
            _console().print(_shared_state_line(state))
        table = Table("deployment", "host", "status", "latency", "circuit", "dialect", "reason")
        for row in rows:
            latency = f"{row['latency_ms']:.0f} ms" if row["latency_ms"] is not None else "-"
            table.add_row(
                _deployment_label(row),
                _host(row["endpoint"]),
                _styled(row["status"]),
                latency,
                row["circuit"],
                row["dialect"] or "-",
                row["reason"],
            )
        _console().print(table)
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


def _shared_state_line(state: Mapping[str, Any]) -> str:
    answer = "answers" if state["available"] else "[red]unreachable[/red]: this process's own state"
    return (
        f"shared state: {state['backend']} at {state['url']} ({answer}); circuits are the fleet's"
    )


def _ordered_backends(forge: Forge) -> list[tuple[DeploymentSpec, ChatBackend]]:
    """The deployments of the fallback order (kinds expanded), each with its backend."""
    backends = forge.router.backends
    deployments = forge.config.providers.deployments
    return [
        (deployments[name], backends[name])
        for name in forge.config.providers.ordered_names()
        if name in backends
    ]


def _deployment_label(row: Mapping[str, Any]) -> str:
    """A row's deployment, with its kind when the name does not say it (``gpu-box (ollama)``)."""
    name, kind = row["deployment"], row["provider"]
    return name if name == kind else f"{name} ({kind})"


def _host(endpoint: str) -> str:
    """``host:port`` of an HTTP endpoint (in-process models: their description)."""
    parts = urlsplit(endpoint)
    return parts.netloc or endpoint


def _provider_health(forge: Forge, spec: DeploymentSpec, backend: ChatBackend) -> dict[str, Any]:
    row: dict[str, Any] = {
        "deployment": spec.name,
        "provider": spec.kind.value,
        "endpoint": endpoint_of(backend),
        "status": "up",
        "latency_ms": None,
        "circuit": forge.router.breaker_for(backend).state.value,
        "dialect": _known_dialect(backend),
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
    if isinstance(backend, HuggingFaceBackend):
        # No endpoint to probe: the runtime itself is checked (a load and one token in a
        # child process, once), so a build that crashes on this CPU shows as down.
        report = backend.runtime_report()
        elapsed = (time.perf_counter() - started) * 1000
        loaded = "loaded" if _loaded_local_models(backend) else "loads on first request"
        where = backend.isolation_description()
        return {
            **row,
            "status": report.status,
            "latency_ms": elapsed,
            "reason": f"{where}, {loaded}: {report.reason}",
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
        row["dialect"] = _dialect(backend)
    return row


def _known_dialect(backend: ChatBackend) -> str | None:
    """The dialect of an OpenAI-compatible backend if already known (no network call)."""
    return backend.dialect if isinstance(backend, OpenAICompatibleClient) else None


def _dialect(backend: ChatBackend) -> str | None:
    """The dialect of an OpenAI-compatible backend, identifying its server once if needed."""
    if isinstance(backend, OpenAICompatibleClient):
        return backend.server_dialect().name
    return None


def _loaded_local_models(backend: object) -> list[str]:
    own = getattr(backend, "stats", None)
    if not callable(own):
        return []
    return [str(model.get("model")) for model in own().get("models", [])]


@app.command()
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
    forge = _forge_or_exit(config)
    rows: list[dict[str, Any]] = []
    for spec, backend in _ordered_backends(forge):
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
            _deployment_label(row),
            _host(row["endpoint"]),
            row["model"],
            _human_bytes(row["size_bytes"]),
            str(row["context_window"] or "-"),
            _yes_no(row["tools"]),
            _yes_no(row["loaded"]),
            row.get("dialect") or "-",
        )
    _console().print(table)


def _models_of(forge: Forge, spec: DeploymentSpec, backend: ChatBackend) -> list[dict[str, Any]]:
    if spec.kind is Provider.HUGGINGFACE:
        hf = forge.config.providers.local.huggingface
        loaded = set(_loaded_local_models(backend))
        rows = []
        for name in [entry.name for entry in hf.models] or [EMBEDDED_MODEL]:
            resolved = resolve_local_model(name, hf)
            capabilities = backend.capabilities(name)
            rows.append(
                _model_row(
                    spec,
                    backend,
                    name,
                    size=resolved.path.stat().st_size if resolved.path.is_file() else None,
                    context=capabilities.context_window,
                    tools=capabilities.tools,
                    loaded=str(resolved.path) in loaded or name in loaded,
                )
            )
        return rows
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
    dialect = _dialect(backend)
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


@app.command()
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
    forge = _forge_or_exit(config)
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
    console = _console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    layers: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=False) as progress:

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


@app.command()
def warm(
    model: Annotated[
        str | None,
        typer.Argument(
            help="One model to load: an Ollama tag (gpu-box:TAG for one host), or "
            "huggingface:NAME. Default: every configured local model."
        ),
    ] = None,
    all_hosts: Annotated[
        bool,
        typer.Option(
            "--all-hosts",
            help="Load an Ollama model on every host that has it pulled, not only on the "
            "host that will serve it.",
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load local models now, so the first request does not wait; print where each loaded and
    how long it took.

    In-process (huggingface) models load in this process. An Ollama model is preloaded with
    Ollama's documented empty /api/generate (the model, and keep_alive when configured) on the
    host that will serve it: the first of the route a request for it gets (routing.balance:
    a host that has it loaded already, else the config order), among the hosts that have it
    pulled; --all-hosts loads it on each of them. Without MODEL: the configured in-process
    models and Ollama's preferred models that are pulled. Exit code 1 when a model does not
    load, or MODEL is pulled on no host that answers.

    Examples:

      forge warm

      forge warm llama3.1:8b --all-hosts

      forge warm gpu-box:llama3.1:8b --json
    """
    forge = _forge_or_exit(config)
    loaded: list[dict[str, Any]] = []
    failed = False
    hf = forge.config.providers.local.huggingface
    hf_names = [entry.name for entry in hf.models] or [EMBEDDED_MODEL]
    if model is None:
        local_models = hf_names
        ollama_models = _ollama_preferred(forge)
    elif model.startswith(f"{Provider.HUGGINGFACE.value}:") or model in hf_names:
        local_models = [model.removeprefix(f"{Provider.HUGGINGFACE.value}:")]
        ollama_models = []
    else:
        local_models = []
        ollama_models = [model]
    for name in local_models:
        started = time.perf_counter()
        try:
            forge.warm([name])
        except ProviderError as exc:
            failed = True
            typer.echo(f"forge: huggingface:{name} did not load: {exc}", err=True)
            continue
        seconds = time.perf_counter() - started
        loaded.append(
            {
                "model": f"huggingface:{name}",
                "deployment": Provider.HUGGINGFACE.value,
                "endpoint": None,
                "seconds": seconds,
            }
        )
    for text in ollama_models:
        targets = _warm_targets(forge, text, all_hosts=all_hosts)
        if not targets:
            if model is not None:
                failed = True
                typer.echo(f"forge: {text} is not pulled on any Ollama host that answers", err=True)
            continue
        for spec, backend, name in targets:
            admin = ollama_admin(backend)
            assert admin is not None
            started = time.perf_counter()
            try:
                admin.preload(name)
            except ProviderError as exc:
                failed = True
                typer.echo(f"forge: {spec.name}:{name} did not load: {exc}", err=True)
                continue
            forge.router.resident.mark_loaded(endpoint_of(backend), name)
            loaded.append(
                {
                    "model": f"{spec.name}:{name}",
                    "deployment": spec.name,
                    "endpoint": endpoint_of(backend),
                    "seconds": time.perf_counter() - started,
                }
            )
    if as_json:
        typer.echo(json.dumps(loaded, indent=2))
    else:
        for entry in loaded:
            where = f" on {_host(entry['endpoint'])}" if entry["endpoint"] else ""
            typer.echo(f"loaded {entry['model']}{where} in {entry['seconds']:.1f}s")
    if failed:
        raise typer.Exit(1)


def _ollama_preferred(forge: Forge) -> list[str]:
    """The preferred models of every Ollama deployment in the fallback order (else each one's
    default model), in order, each once."""
    models: list[str] = []
    for spec, backend in _ordered_backends(forge):
        if ollama_admin(backend) is None:
            continue
        for name in getattr(spec.section, "preferred_models", None) or [backend.default_model()]:
            if name not in models:
                models.append(name)
    return models


def _warm_targets(
    forge: Forge, text: str, *, all_hosts: bool
) -> list[tuple[DeploymentSpec, ChatBackend, str]]:
    """Where ``forge warm`` loads the Ollama model ``text`` (a tag, or ``deployment:tag``):
    the Ollama deployments that have it pulled (``/api/tags``; one that does not answer is
    named on stderr and skipped), the first of them in the route a request for it gets, or
    all of them in config order with ``all_hosts``."""
    providers = forge.config.providers
    resolved = providers.resolve(text)
    named = [name for name, model in resolved or [] if model]
    model = text.partition(":")[2] if named else text
    pulled: dict[str, tuple[DeploymentSpec, ChatBackend]] = {}
    for spec, backend in _ordered_backends(forge):
        admin = ollama_admin(backend)
        if admin is None or (named and spec.name not in named):
            continue
        try:
            names = frozenset(listed.name for listed in admin.pulled_models())
        except ProviderError as exc:
            typer.echo(f"forge: skipped {spec.name}: {exc}", err=True)
            continue
        if in_listing(model, names):
            pulled[spec.name] = (spec, backend)
    if all_hosts:
        return [(spec, backend, model) for spec, backend in pulled.values()]
    pin = text if named else f"{Provider.OLLAMA.value}:{model}"
    candidates, _ = forge.router.plan(ChatRequest(messages=[], model=pin), fallback_enabled=False)
    first = next((c.deployment for c in candidates if c.deployment in pulled), None)
    if first is None:
        # Planned elsewhere (the pin names another deployment of the kind): config order.
        first = next(iter(pulled), None)
    return [] if first is None else [(*pulled[first], model)]


@app.command()
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
    forge = _forge_or_exit(config)
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
            _ms(series["latency_ms"]["p50"]),
            _ms(series["ttft_ms"]["p50"]),
            str(series["input_tokens"] + series["output_tokens"]),
            f"{series['spend_usd']:.6f}",
        )
    console = _console()
    state = data.get("state")
    if not data["models"] and state is None:
        console.print("no requests routed in this process")
        return
    if data["models"]:
        console.print(table)
    else:
        console.print("no requests routed in this process (metrics are per process)")
    if state is not None:
        console.print(_shared_state_line(state))
    circuits = Table("endpoint", "circuit", "consecutive failures", "times opened")
    for endpoint, circuit in data["circuits"].items():
        circuits.add_row(
            endpoint,
            circuit["state"],
            str(circuit["consecutive_failures"]),
            str(circuit["times_opened"]),
        )
    console.print(circuits)
    if data.get("budgets"):
        budgets = Table("deployment", "rpm", "requests in last 60 s", "tpm", "tokens in last 60 s")
        for name, budget in data["budgets"].items():
            budgets.add_row(
                name,
                _limit(budget["rpm"]),
                str(budget["requests_in_window"]),
                _limit(budget["tpm"]),
                str(budget["tokens_in_window"]),
            )
        console.print(budgets)
    deployments = Table("deployment", "host", "in flight", "loading", "recent latency ms")
    for name, load in data["deployments"].items():
        latency = ", ".join(f"{model} {ms:.0f}" for model, ms in load["latency_ms"].items())
        deployments.add_row(
            name,
            _host(load["endpoint"]),
            str(load["in_flight"])
            + (f" (fleet {load['fleet_in_flight']})" if "fleet_in_flight" in load else ""),
            ", ".join(load["loading"]) or "-",
            latency or "-",
        )
    console.print(deployments)
    usage = data["usage"]
    share = usage["local_share"]
    console.print(
        f"spend ${usage['spend_usd']:.6f}; tokens served locally: "
        + ("-" if share is None else f"{share:.0%}")
        + (
            f"; {usage['unpriced_tokens']} cloud tokens without a price"
            if usage["unpriced_tokens"]
            else ""
        )
    )


def _forge_or_exit(config: Path | None) -> Forge:
    try:
        return Forge(config)
    except ForgeError as exc:
        typer.echo(f"forge: {exc}", err=True)
        raise typer.Exit(1) from None


def _console(*, stderr: bool = False) -> Console:
    # Wide enough that reasons are not cut when output is piped or captured.
    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 200)


def _styled(status: str) -> str:
    colour = {"up": "green", "warming": "yellow"}.get(status, "red")
    return f"[{colour}]{status}[/{colour}]"


def _human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _resolved_view(config: ForgeConfig) -> dict[str, Any]:
    """The config as plain data, with each API key env var shown as set or not (never its value)
    and the Redis URL's password masked."""
    data = config.model_dump(mode="json")
    for name, section in data["providers"]["cloud"].items():
        env_name = section.get("api_key_env")
        if env_name:
            state = "set" if os.environ.get(env_name) else "not set"
            section["api_key"] = f"${{{env_name}}} ({state})"
        data["providers"]["cloud"][name] = section
    state = data["routing"]["state"]
    if state.get("url"):
        state["url"] = mask_url(state["url"])
    return data


def _deployments_view(config: ForgeConfig) -> dict[str, Any]:
    """Each deployment (kind, local, endpoint) and the route planned for a sample request.

    Planning makes no network call; circuits and health are unknown here, so the sample shows
    what the config and the environment (keys, installed extras) allow.
    """
    forge = Forge(config)
    backends = forge.router.backends
    listed = {
        name: {
            "kind": spec.kind.value,
            "local": spec.local,
            "endpoint": endpoint_of(backends[name]) if name in backends else None,
        }
        for name, spec in config.providers.deployments.items()
    }
    candidates, drops = forge.router.plan(ChatRequest(messages=[]))
    return {
        "by_name": listed,
        "sample_order": [candidate.key for candidate in candidates],
        "sample_skipped": {
            f"{drop.deployment or drop.provider.value}:{drop.model or '-'}": drop.reason
            for drop in drops
        },
    }


def _report(route: RouteTrail | None) -> None:
    if route is None or route.provider is None:
        return
    timing = f" in {route.total_ms:.0f} ms" if route.total_ms is not None else ""
    served = route.deployment or route.provider.value
    typer.echo(f"served by {served}:{route.model}{timing}", err=True)
    if len(route.attempts) > 1 or route.drops:
        typer.echo("route:\n" + route.describe(), err=True)


def main() -> None:
    """Entry point of the ``forge`` script."""
    app()
