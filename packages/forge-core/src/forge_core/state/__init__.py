"""Routing state shared across processes (circuits, health, load, budgets): in memory or on Redis.

`SharedState` (`forge_core.state.base`) is what the router reads and writes; `shared_state_for`
picks the store ``routing.state`` names. The Redis store (`forge_core.state.redis`) is imported
only when one is configured (forge-core[redis]).

One store per URL, key prefix and bounds serves every router of the process that names it.
Each router that takes it is one of its holders (kept weakly: a router dropped without being
closed just stops counting); `release_shared_state` closes the store when the last holder lets
go, and whatever is still open when the interpreter exits is closed then.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import TYPE_CHECKING

from forge_core.state.base import BreakerRecord, LoadSource, SharedState, mask_url

if TYPE_CHECKING:
    from forge_core.config.schema import StateConfig

__all__ = [
    "BreakerRecord",
    "LoadSource",
    "SharedState",
    "mask_url",
    "release_shared_state",
    "shared_state_for",
]


_stores: dict[tuple[object, ...], SharedState] = {}
_holders: dict[tuple[object, ...], weakref.WeakSet[object]] = {}
_stores_lock = threading.Lock()


def shared_state_for(config: StateConfig, *, holder: object | None = None) -> SharedState | None:
    """The store ``routing.state`` names: None for ``memory``.

    One `RedisState` (one connection pool) per URL, key prefix and bounds in a process, however
    many `Forge` objects use it; ``holder`` (a router) counts as using it until it is released
    (`release_shared_state`) or garbage-collected. Redis needs forge-core[redis].
    """
    if config.backend == "memory" or config.url is None:
        return None
    key = (
        config.url,
        config.key_prefix,
        config.timeout_seconds,
        config.cache_ttl_seconds,
        config.retry_interval_seconds,
    )
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            from forge_core.state.redis import RedisState

            store = RedisState(
                config.url,
                key_prefix=config.key_prefix,
                timeout=config.timeout_seconds,
                cache_ttl=config.cache_ttl_seconds,
                retry_interval=config.retry_interval_seconds,
            )
            _stores[key] = store
            _holders[key] = weakref.WeakSet()
        if holder is not None:
            _holders[key].add(holder)
        return store


def release_shared_state(store: SharedState, holder: object) -> None:
    """``holder`` no longer uses ``store``; when no other holder does, it is closed (its
    connections and threads) and the next `shared_state_for` makes a new one."""
    with _stores_lock:
        key = next((key for key, found in _stores.items() if found is store), None)
        if key is None:
            return
        holders = _holders[key]
        holders.discard(holder)
        if len(holders):
            return
        del _stores[key], _holders[key]
    store.close()


@atexit.register
def _close_stores() -> None:
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
        _holders.clear()
    for store in stores:
        store.close()
