"""``forge warm``: local models loaded now, so the first request does not wait.

In-process models load in this process; an Ollama model is preloaded on the host that will
serve it (the first of the route a request for it gets), or on every host that has it pulled.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from forge_core.backends import ChatBackend, ollama_admin
from forge_core.cli.common import ConfigOption, JsonOption, forge_or_exit, ordered_backends
from forge_core.cli.format import host
from forge_core.config.deployments import DeploymentSpec
from forge_core.config.local_models import EMBEDDED_MODEL
from forge_core.errors import ProviderError
from forge_core.forge import Forge
from forge_core.routing.health import endpoint_of
from forge_core.routing.load import in_listing
from forge_core.types import ChatRequest, Provider

__all__ = ["warm"]


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
    forge = forge_or_exit(config)
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
            where = f" on {host(entry['endpoint'])}" if entry["endpoint"] else ""
            typer.echo(f"loaded {entry['model']}{where} in {entry['seconds']:.1f}s")
    if failed:
        raise typer.Exit(1)


def _ollama_preferred(forge: Forge) -> list[str]:
    """The preferred models of every Ollama deployment in the fallback order (else each one's
    default model), in order, each once."""
    models: list[str] = []
    for spec, backend in ordered_backends(forge):
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
    for spec, backend in ordered_backends(forge):
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
