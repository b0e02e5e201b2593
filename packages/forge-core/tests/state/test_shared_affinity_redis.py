"""Prefix affinity shared by a fleet on a real ``redis-server`` (#32, ``routing.state: redis``).

Two Forges on one Redis and key prefix, each with its own store (another ``cache_ttl`` is
another store, as another process has), balance four scripted OpenAI-compatible endpoints: a
conversation one served goes to the same deployment when its next turn arrives at the other.
What is shared is bounded per deployment and expires; with Redis gone, each routes on what
it learned itself. The publisher thread writes within ``cache_ttl``; the tests write at once
with `RedisState.flush_prefixes` instead of waiting for it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fake_clock import FakeClock
from forge_core import ChatRequest, Forge, ForgeConfig, Message
from forge_core.prefixes import prefix_digests
from forge_core.state.redis import RedisState
from forge_core.testing import ScriptedBackend
from forge_test_support import balanced_endpoints
from redis_server import RedisServer, run_redis

pytestmark = pytest.mark.redis_server

COUNT = 4


def _config(url: str, prefix: str, cache_ttl: float, **routing: Any) -> ForgeConfig:
    state = {
        "backend": "redis",
        "url": url,
        "key_prefix": prefix,
        "cache_ttl_seconds": cache_ttl,
        "retry_interval_seconds": 30,
    }
    return balanced_endpoints(COUNT, state=state, **routing)


def _forge(
    url: str, prefix: str, cache_ttl: float, clock: FakeClock | None = None, **routing: Any
) -> Forge:
    return Forge(
        _config(url, prefix, cache_ttl, **routing),
        backends={
            f"ep{i}": ScriptedBackend(f"from ep{i}", endpoint=f"http://ep{i}.test/v1")
            for i in range(COUNT)
        },
        clock=clock or FakeClock(),
        env={},
    )


def _store(forge: Forge) -> RedisState:
    shared = forge.router.shared
    assert isinstance(shared, RedisState)
    return shared


def _turn(topic: str, turn: int) -> list[Message]:
    """Turn ``turn`` (from 1) of the conversation about ``topic``: its own system prompt."""
    messages = [Message(role="system", content=f"You know {topic}. " * 40)]
    for i in range(turn):
        messages.append(Message(role="user", content=f"{topic} question {i}"))
        if i < turn - 1:
            messages.append(Message(role="assistant", content=f"{topic} answer {i}"))
    return messages


TOPICS = ("cats", "owls", "tea", "rivers", "maps", "bees")


def test_a_conversation_served_by_one_process_goes_back_there_from_another(
    redis_server: RedisServer,
) -> None:
    a = _forge(redis_server.url, "aff-shared", 0.0)
    b = _forge(redis_server.url, "aff-shared", 0.000001)
    assert _store(a) is not _store(b)
    home = {topic: a.chat(_turn(topic, 1)).route.deployment for topic in TOPICS}
    # Equal hosts take turns: the conversations are spread over the four.
    assert len(set(home.values())) == COUNT
    _store(a).flush_prefixes()
    for topic in TOPICS:
        route = b.chat(_turn(topic, 2)).route
        assert route.deployment == home[topic]
        # A served the system prompt and the first question: two messages.
        assert route.attempts[-1].affinity == "prefix:2"
    assert b.stats()["affinity"]["hits"] == len(TOPICS)
    # And back: what B served, A learns (the third turn holds four messages B served).
    _store(b).flush_prefixes()
    for topic in TOPICS:
        route = a.chat(_turn(topic, 3)).route
        assert (route.deployment, route.attempts[-1].affinity) == (home[topic], "prefix:4")
    a.close()
    b.close()


def test_what_is_shared_is_bounded_per_deployment_and_expires(
    redis_server: RedisServer,
) -> None:
    import redis

    store = RedisState(redis_server.url, key_prefix="aff-bounds")
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    key = "aff-bounds:affinity:http://ep0.test/v1"
    # An entry written long ago (an hour): trimmed by the next write, whose TTL is 60 s.
    old_ms = int(time.time() * 1000) - 3_600_000
    raw.xadd(key, {"m": "m", "d": "00" * 8, "w": "gone"}, id=f"{old_ms}-0")
    for i in range(10):
        digests = prefix_digests(ChatRequest(messages=[Message(role="user", content=f"q{i}")]))
        store.share_prefixes("http://ep0.test/v1", "m", digests, limit=3, ttl=60.0)
    store.flush_prefixes()
    entries = raw.xrange(key)
    assert len(entries) == 3
    assert all(fields["w"] != "gone" for _, fields in entries)
    # The newest three, each one request's digests in hex.
    newest = prefix_digests(ChatRequest(messages=[Message(role="user", content="q9")]))
    assert entries[-1][1]["d"] == b"".join(newest).hex()
    # The stream itself expires a TTL after its last write.
    assert 0 < raw.pttl(key) <= 60_000
    store.close()
    raw.close()


def test_what_the_fleet_learned_counts_for_the_ttl_only(redis_server: RedisServer) -> None:
    import redis

    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    # An entry written two minutes ago, against a TTL of one: never learned.
    old_ms = int(time.time() * 1000) - 120_000
    digests = prefix_digests(ChatRequest(messages=_turn("tea", 1)))
    raw.xadd(
        "aff-ttl:affinity:http://ep0.test/v1",
        {"m": "scripted", "d": b"".join(digests).hex(), "w": "another"},
        id=f"{old_ms}-0",
    )
    clock = FakeClock()
    a = _forge(redis_server.url, "aff-ttl", 0.0, affinity_ttl_seconds=60)
    b = _forge(redis_server.url, "aff-ttl", 0.000001, clock, affinity_ttl_seconds=60)
    a.chat(_turn("cats", 1))
    _store(a).flush_prefixes()
    # B reads it (with the refresh of its first balanced request), then 61 s pass for B.
    b.chat(_turn("owls", 1))
    positions = {f"http://ep{i}.test/v1": i for i in range(COUNT)}
    cats = prefix_digests(ChatRequest(messages=_turn("cats", 2)))
    assert b.router.affinity.longest("scripted", cats, positions) is not None
    clock.advance(61)
    assert b.router.affinity.longest("scripted", cats, positions) is None
    route = b.chat(_turn("cats", 2)).route
    # Nothing held any more: placed as a new conversation is.
    assert route.attempts[-1].affinity == "spread"
    assert b.stats()["affinity"]["misses"] == 2
    c = _forge(redis_server.url, "aff-ttl", 0.000002, affinity_ttl_seconds=60)
    c.chat(_turn("rivers", 1))  # reads the streams
    tea = prefix_digests(ChatRequest(messages=_turn("tea", 2)))
    assert c.router.affinity.longest("scripted", tea, positions) is None
    assert c.router.affinity.longest("scripted", cats, positions) is not None
    assert c.chat(_turn("tea", 2)).route.attempts[-1].affinity == "spread"
    for forge in (a, b, c):
        forge.close()
    raw.close()


def test_with_redis_gone_each_process_routes_on_what_it_learned_itself() -> None:
    with run_redis() as redis_server:
        forge = _forge(redis_server.url, "aff-gone", 0.0)
        home = {topic: forge.chat(_turn(topic, 1)).route.deployment for topic in TOPICS[:4]}
        redis_server.kill()
        for turn in (2, 3):
            for topic in TOPICS[:4]:
                route = forge.chat(_turn(topic, turn)).route
                assert route.deployment == home[topic]
                assert route.attempts[-1].affinity == f"prefix:{2 * turn - 2}"
        assert not _store(forge).available()
        forge.close()
