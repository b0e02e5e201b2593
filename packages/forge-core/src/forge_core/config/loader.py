"""Reading ``forge.yaml``: where the file is, what overrides it, and errors that say where.

Precedence, in one function (`load_config`): constructor kwargs > ``FORGE_*`` env vars > the
file > built-in defaults. Every error is a `ConfigError` naming its source (the file, the env
var, the arguments) and the key path, with the expected value; a secret's value is never shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from forge_core.config.deployments import KIND_VALUES
from forge_core.config.schema import ForgeConfig
from forge_core.config.sections import KeyPathError
from forge_core.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "ENV_VARS",
    "apply_overrides",
    "find_config_file",
    "load_config",
    "routing_overrides",
]

#: The file name looked for in the working directory and the user config directory.
DEFAULT_CONFIG_NAME = "forge.yaml"
_SECRET_KEY = re.compile(r"(key|token|secret|password|authorization)", re.IGNORECASE)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


#: Env vars forge reads, each mapped onto one key path.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "FORGE_DEFAULT_PROVIDER": ("model_preferences", "default_provider"),
    "FORGE_DEFAULT_MODEL": ("model_preferences", "default_model"),
    "FORGE_LOCAL_FIRST": ("model_preferences", "local_first"),
    "FORGE_LOCAL_ONLY": ("model_preferences", "local_only"),
    "FORGE_FALLBACK_ENABLED": ("providers", "fallback", "enabled"),
    "FORGE_FALLBACK_ORDER": ("providers", "fallback", "order"),
    "FORGE_OLLAMA_BASE_URL": ("providers", "local", "ollama", "base_url"),
}


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: explicit path, ``$FORGE_CONFIG``, ``./forge.yaml``, user dir.

    An explicit path or ``$FORGE_CONFIG`` that does not exist is an error, not a silent default.
    """
    for named, origin in ((explicit, "path"), (os.environ.get("FORGE_CONFIG"), "FORGE_CONFIG")):
        if named:
            path = Path(named).expanduser()
            if not path.is_file():
                raise ConfigError(f"{path}: config file not found (from {origin})", path=str(path))
            return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    if local.is_file():
        return local
    import platformdirs

    user = Path(platformdirs.user_config_dir("forge")) / DEFAULT_CONFIG_NAME
    return user if user.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ForgeConfig:
    """Build the config: ``overrides`` > ``FORGE_*`` env > the file > defaults.

    ``overrides`` is a nested mapping with the file's shape (``{"model_preferences":
    {"local_only": True}}``). Every error is a `ConfigError` naming its source and key path.
    """
    env = os.environ if env is None else env
    file = find_config_file(path)
    layers: list[tuple[str, dict[str, Any]]] = []
    if file is not None:
        layers.append((str(file), _read_yaml(file)))
    env_layer, env_sources = _env_layer(env)
    if env_layer:
        layers.append(("environment", env_layer))
    if overrides:
        layers.append(("arguments", _to_plain(overrides)))

    merged: dict[str, Any] = {}
    for _, data in layers:
        merged = _deep_merge(merged, data)
    merged = _interpolate(merged, env, str(file) if file else "config")
    try:
        config = ForgeConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, layers, env_sources) from None
    config.source = str(file) if file else None
    return config


def routing_overrides(
    *,
    fallback_order: Sequence[str] | None = None,
    local_first: bool | None = None,
    local_only: bool | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> dict[str, Any]:
    """The ``Forge(overrides=...)`` mapping for the routing options a framework model exposes.

    ``fallback_order`` -> ``providers.fallback.order``; ``local_first`` / ``local_only`` ->
    ``model_preferences``; ``timeout`` -> ``routing.total_timeout_seconds``; ``max_retries``
    -> ``routing.max_retries``. None leaves the key out, so the config file (or the default)
    decides.
    """
    overrides: dict[str, Any] = {}
    if fallback_order is not None:
        overrides["providers"] = {"fallback": {"order": list(fallback_order)}}
    preferences = {
        key: value
        for key, value in (("local_first", local_first), ("local_only", local_only))
        if value is not None
    }
    if preferences:
        overrides["model_preferences"] = preferences
    routing: dict[str, Any] = {}
    if timeout is not None:
        routing["total_timeout_seconds"] = timeout
    if max_retries is not None:
        routing["max_retries"] = max_retries
    if routing:
        overrides["routing"] = routing
    return overrides


def apply_overrides(config: ForgeConfig, overrides: Mapping[str, Any]) -> ForgeConfig:
    """``config`` with ``overrides`` (the file's shape) on top, validated like `load_config`."""
    origin = config.source or "config"
    layers = [(origin, config.model_dump(mode="json")), ("arguments", _to_plain(overrides))]
    try:
        merged = ForgeConfig.model_validate(_deep_merge(layers[0][1], layers[1][1]))
    except ValidationError as exc:
        raise _config_error(exc, layers, {}) from None
    merged.source = config.source
    return merged


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{file}: malformed YAML{where}: {problem}", path=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}", path=str(file)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: expected a mapping at the top level, got {type(data).__name__}",
            path=str(file),
        )
    return data


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    layer: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for name, key_path in ENV_VARS.items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        value: Any = [part.strip() for part in raw.split(",") if part.strip()]
        if key_path[-1] != "order":
            value = raw.strip()
        node = layer
        for key in key_path[:-1]:
            node = node.setdefault(key, {})
        node[key_path[-1]] = value
        sources[key_path] = name
    return layer, sources


def _to_plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, Mapping):
        return {key: _to_plain(item) for key, item in value.items()}
    return value


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _interpolate(value: Any, env: Mapping[str, str], origin: str, key_path: str = "") -> Any:
    """Replace ``${VAR}`` in string values; an unset variable is an error naming it."""
    if isinstance(value, dict):
        return {
            key: _interpolate(item, env, origin, f"{key_path}.{key}" if key_path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(item, env, origin, f"{key_path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{origin}: {key_path}: environment variable {name} is not set",
                    path=origin,
                    key_path=key_path,
                )
            return env[name]

        return _ENV_REF.sub(substitute, value)
    return value


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _lookup(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Whether ``loc`` names a value present in ``data``."""
    for part in loc:
        if isinstance(data, dict):
            if part not in data:
                return False
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """``loc`` without the ``kind`` tag pydantic inserts after ``endpoints[i]``."""
    parts = list(loc)
    for i in range(len(parts) - 2):
        if (
            parts[i] == "endpoints"
            and isinstance(parts[i + 1], int)
            and parts[i + 2] in KIND_VALUES
        ):
            del parts[i + 2]
            break
    return tuple(parts)


def _value_at(layers: list[tuple[str, dict[str, Any]]], loc: tuple[int | str, ...]) -> Any:
    """The value at ``loc`` in the topmost layer that has one (None if none does)."""
    for _, data in reversed(layers):
        if _lookup(data, loc):
            value: Any = data
            for part in loc:
                value = value[part]
            return value
    return None


def _config_error(
    exc: ValidationError,
    layers: list[tuple[str, dict[str, Any]]],
    env_sources: dict[tuple[str, ...], str],
) -> ConfigError:
    lines = []
    first_origin = None
    first_key = None
    for error in exc.errors():
        loc = _without_union_tags(tuple(error["loc"]))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, KeyPathError):
            loc += cause.sub_path
            error = {**error, "msg": str(cause), "input": _value_at(layers, loc)}
        key_path = _format_loc(loc)
        origin = "defaults"
        for name, data in reversed(layers):
            if _lookup(data, loc):
                origin = name
                break
        if origin == "environment":
            origin = next(
                (var for path, var in env_sources.items() if loc[: len(path)] == path),
                "environment",
            )
        if error["type"] == "extra_forbidden":
            detail = "unknown key"
        elif error["type"] == "missing":
            detail = "missing key"
            origin = next(
                (name for name, data in reversed(layers) if _lookup(data, loc[:-1])), origin
            )
        else:
            detail = error["msg"]
            if not any(_SECRET_KEY.search(str(part)) for part in loc):
                detail += f", got {_short_repr(error.get('input'))}"
        lines.append(f"{origin}: {key_path}: {detail}")
        first_origin = first_origin or origin
        first_key = first_key or key_path
    header = "invalid forge configuration" if len(lines) > 1 else lines[0]
    message = header if len(lines) == 1 else header + ":\n  " + "\n  ".join(lines)
    file_names = {name for name, _ in layers} - {"environment", "arguments"}
    path = first_origin if first_origin in file_names else None
    return ConfigError(message, path=path, key_path=first_key)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
