"""`shared_forge`: one `Forge` per distinct set of options, for the framework wrappers.

A framework model is often constructed per request: LangChain builds a new chat model inside
a chain, an agent copies its LLM, a web handler makes one per call. If each of those built its
own `Forge`, every request would re-read ``forge.yaml``, rebuild the HTTP client pools and
start with fresh circuit breakers, health cache and metrics, so a provider known to be down
would be tried again on every request. `shared_forge` hands all wrappers built with the same
options the same `Forge`, decided by one rule here instead of one per wrapper.

`close_shared_forges` closes them all (a worker's shutdown, a test's teardown); a wrapper used
after that, or after its `Forge` was closed any other way, gets a fresh one.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import ChainMap, OrderedDict
from collections.abc import Hashable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.backends.base import ChatBackend
from forge_core.config.loader import find_config_file
from forge_core.config.schema import ForgeConfig
from forge_core.forge import Forge

__all__ = [
    "ForgeSource",
    "clear_shared_forges",
    "close_shared_forges",
    "config_identity",
    "shared_forge",
]

#: How many distinct option sets keep their `Forge`; the least recently used one is dropped.
MAX_SHARED_FORGES = 32

#: The environment variables `load_config` reads besides the file (``FORGE_CONFIG`` and the
#: ``FORGE_*`` overrides); a change in them can change the configuration a path loads to.
_ENV_PREFIX = "FORGE_"


class _ConfigByIdentity:
    """A `ForgeConfig` compared by identity (the model is mutable, so not hashable)."""

    __slots__ = ("config",)

    def __init__(self, config: ForgeConfig) -> None:
        self.config = config

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ConfigByIdentity) and other.config is self.config

    def __hash__(self) -> int:
        return id(self.config)

    def __repr__(self) -> str:
        return f"ForgeConfig@{id(self.config):#x}"


@dataclass(frozen=True)
class _SharingKey:
    """What makes two `shared_forge` calls share a `Forge`.

    The environment is kept only as a digest, and the repr shows neither it nor the override
    values, so a key (or the cache) can be printed or logged without leaking an API key.
    """

    config: Hashable
    forge_env: tuple[tuple[str, str], ...] = field(repr=False)
    overrides: Hashable = field(repr=False)
    env: str | None = field(repr=False)
    #: Given backends (`Forge`'s ``backends``), by deployment name and object identity.
    backends: tuple[tuple[str, int], ...] = ()

    def __repr__(self) -> str:
        forge_env = [name for name, _ in self.forge_env]
        env = "None" if self.env is None else "<hidden>"
        overrides = "None" if self.overrides is None else "<frozen>"
        return f"_SharingKey(config={self.config!r}, forge_env={forge_env}, overrides={overrides}, env={env})"


_lock = threading.Lock()
_forges: OrderedDict[_SharingKey, Forge] = OrderedDict()


def shared_forge(
    config: ForgeConfig | str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    backends: Mapping[str, ChatBackend] | None = None,
) -> Forge:
    """The `Forge` for these options, made once and shared by every caller passing the same.

    The arguments are `Forge`'s. Two calls share a `Forge` when:

    - ``config`` is the same `ForgeConfig` object (by identity: it is mutable), or a path that
      resolves to the same file with the same modification time and size (an edited file gives
      a new `Forge`), or None both times with the same file found by the default discovery;
      for a path or None, the ``FORGE_*`` environment variables must also be the same;
    - ``overrides`` are equal (compared as a frozen canonical form; None and ``{}`` agree);
    - ``env`` has the same items (compared by a digest; the values are API keys);
    - ``backends`` (given instead of the configured clients, e.g. in tests) are the same
      objects under the same names.

    A framework model may be built per request (LangChain does so in chains); sharing keeps it
    from re-reading ``forge.yaml``, rebuilding HTTP pools and losing breaker and health state
    each time. The most recent `MAX_SHARED_FORGES` option sets are kept; an older `Forge` is
    dropped from the cache, not closed, so whoever still holds it can go on using it (its HTTP
    connections close when it is garbage-collected). A cached `Forge` that was closed is
    replaced by a new one. Thread-safe; a `Forge` is built at most once per key.
    """
    key = _key(config, overrides, env, backends)
    with _lock:
        forge = _forges.get(key)
        if forge is not None and not forge.closed:
            _forges.move_to_end(key)
            return forge
        # Built under the lock so that racing callers cannot end up with two Forges for one
        # key; building loads config and makes backends, it never calls a provider.
        forge = Forge(config, overrides=overrides or None, env=env, backends=backends)
        _forges[key] = forge
        while len(_forges) > MAX_SHARED_FORGES:
            _forges.popitem(last=False)
        return forge


class ForgeSource:
    """A wrapper's handle on its shared `Forge`: `shared_forge` once, again only on a change.

    `shared_forge` resolves the config file, reads the ``FORGE_*`` variables and digests the
    environment: tens of microseconds, too much to pay on every call of a chat model. A
    wrapper keeps one `ForgeSource` and calls `get` with its current options on each use; the
    options are compared with the last ones (the config object by identity, the rest by
    equality) and the same `Forge` is returned while they are unchanged, and open. So a
    wrapper keeps the `Forge` it started with when its config file is edited (a new wrapper
    sees the edit), and gets a fresh one once it was closed (`close_shared_forges`).
    """

    __slots__ = ("_identity", "_last")

    def __init__(self) -> None:
        self._last: tuple[Any, Any, Any, Forge, Any] | None = None
        self._identity: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"ForgeSource(ready={self._last is not None})"

    # A cache, not state: copies of a wrapper start empty (and find the same shared Forge),
    # and two wrappers compare equal whatever their sources hold.
    def __copy__(self) -> ForgeSource:
        return ForgeSource()

    def __deepcopy__(self, memo: dict[int, Any]) -> ForgeSource:
        return ForgeSource()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ForgeSource)

    __hash__ = object.__hash__

    def config_identity(self, config: ForgeConfig | str | os.PathLike[str] | None) -> Any:
        """`config_identity` of ``config``, kept while the config object is the same one
        (LangChain asks for it on every call; dumping a `ForgeConfig` is not free)."""
        last = self._identity
        if last is not None and last[0] is config:
            return last[1]
        identity = config_identity(config)
        self._identity = (config, identity)
        return identity

    def get(
        self,
        config: ForgeConfig | str | os.PathLike[str] | None,
        *,
        overrides: Mapping[str, Any] | None = None,
        api_keys: Mapping[str, str] | None = None,
        backends: Mapping[str, ChatBackend] | None = None,
    ) -> Forge:
        """The `Forge` for these options (`shared_forge`).

        ``api_keys`` are environment entries (``{"OPENAI_API_KEY": ...}``) laid over
        ``os.environ`` for this `Forge`'s clients only; they never enter ``os.environ``.
        """
        last = self._last
        if (
            last is not None
            and not last[3].closed
            and (last[0] is config if isinstance(config, ForgeConfig) else last[0] == config)
            and last[1] == (overrides or None)
            and last[2] == (api_keys or None)
            and last[4] == _identities(backends)
        ):
            return last[3]
        env = ChainMap(dict(api_keys), os.environ) if api_keys else None
        forge = shared_forge(config, overrides=overrides, env=env, backends=backends)
        # One tuple, assigned at once: a concurrent reader sees the old or the new state.
        self._last = (
            config,
            dict(overrides) if overrides else None,
            dict(api_keys) if api_keys else None,
            forge,
            _identities(backends),
        )
        return forge


def clear_shared_forges() -> None:
    """Forget every shared `Forge` (for tests that need a fresh one); none is closed."""
    with _lock:
        _forges.clear()


def close_shared_forges() -> None:
    """Close every shared `Forge` and forget it (`Forge.close`): their connections, worker
    processes and threads are released. Wrappers used afterwards get fresh ones."""
    with _lock:
        forges = list(_forges.values())
        _forges.clear()
    for forge in forges:
        forge.close()


def config_identity(config: ForgeConfig | str | os.PathLike[str] | None) -> Any:
    """A JSON-friendly identity of ``config``: its content for a `ForgeConfig`, else the path.

    For a wrapper's identifying parameters (LangChain's ``_identifying_params`` also keys its
    LLM cache), where two equal configs must read the same; `shared_forge` keys differently.
    """
    if isinstance(config, ForgeConfig):
        return config.model_dump(mode="json")
    return None if config is None else os.fspath(config)


def _key(
    config: ForgeConfig | str | os.PathLike[str] | None,
    overrides: Mapping[str, Any] | None,
    env: Mapping[str, str] | None,
    backends: Mapping[str, ChatBackend] | None = None,
) -> _SharingKey:
    source: Hashable
    forge_env: tuple[tuple[str, str], ...] = ()
    if isinstance(config, ForgeConfig):
        source = _ConfigByIdentity(config)
    else:
        # find_config_file raises the ConfigError Forge would for a missing explicit file.
        source = _file_identity(find_config_file(config))
        forge_env = tuple(sorted(item for item in os.environ.items() if _is_forge_var(item[0])))
    return _SharingKey(
        config=source,
        forge_env=forge_env,
        overrides=_freeze(overrides) if overrides else None,
        env=_digest(env) if env is not None else None,
        backends=_identities(backends),
    )


def _identities(backends: Mapping[str, ChatBackend] | None) -> tuple[tuple[str, int], ...]:
    """Given backends by name and object identity (none: empty)."""
    return tuple(sorted((name, id(b)) for name, b in backends.items())) if backends else ()


def _is_forge_var(name: str) -> bool:
    return name.startswith(_ENV_PREFIX)


def _file_identity(path: Path | None) -> tuple[str, int, int] | None:
    if path is None:
        return None
    resolved = path.expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError:
        # Vanished since it was found: Forge raises the ConfigError; -1 never matches a file.
        return (str(resolved), -1, -1)
    return (str(resolved), stat.st_mtime_ns, stat.st_size)


def _freeze(value: Any) -> Hashable:
    """A hashable canonical form of an overrides value (mappings compare regardless of order)."""
    if isinstance(value, Mapping):
        items = sorted(((str(k), _freeze(v)) for k, v in value.items()), key=lambda kv: kv[0])
        return ("mapping", tuple(items))
    if isinstance(value, Set):
        return ("set", frozenset(_freeze(item) for item in value))
    if isinstance(value, list | tuple):
        return ("sequence", tuple(_freeze(item) for item in value))
    if isinstance(value, Hashable):
        return (type(value).__name__, value)
    # Anything else compares by its JSON form (pydantic models, other containers).
    return ("json", json.dumps(value, sort_keys=True, default=repr))


def _digest(env: Mapping[str, str]) -> str:
    if isinstance(env, ChainMap) and env.maps and env.maps[-1] is os.environ:
        # Entries laid over the process environment (`ForgeSource`): os.environ itself is
        # what a Forge without ``env`` reads too, so only the layers above it tell two apart.
        layers = [sorted(layer.items()) for layer in env.maps[:-1]]
        canonical = json.dumps(["os.environ", layers], ensure_ascii=False)
    else:
        canonical = json.dumps(sorted(env.items()), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
