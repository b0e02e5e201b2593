"""Routing state shared across processes (circuits, health, load, budgets): in memory or on Redis.

`SharedState` (`forge_core.state.base`) is what the router reads and writes; `shared_state_for`
picks the store ``routing.state`` names. The Redis store (`forge_core.state.redis`) is imported
only when one is configured (forge-core[redis]).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from forge_core.state.base import BreakerRecord, LoadSource, SharedState, mask_url

if TYPE_CHECKING:
    from forge_core.config.schema import StateConfig

__all__ = ["BreakerRecord", "LoadSource", "SharedState", "mask_url", "shared_state_for"]


_stores: dict[tuple[object, ...], SharedState] = {}
_stores_lock = threading.Lock()


def shared_state_for(config: StateConfig) -> SharedState | None:
    """The store ``routing.state`` names: None for ``memory``.

    One `RedisState` (one connection pool) per URL, key prefix and bounds in a process, however
    many `Forge` objects use it. Redis needs forge-core[redis].
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
        return store
