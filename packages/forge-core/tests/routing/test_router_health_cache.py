"""Cached health: TTL on a fake clock, warming is not down, cached-down candidates dropped."""

from __future__ import annotations

from fake_clock import FakeClock
from fault_server import FaultServer, forge_on
from forge_core import ChatRequest, Provider
from forge_core.routing.health import HealthCache, HealthStatus

PROMPT = "hi"


class CountingProbe:
    """A backend's optional probe that answers ``answer`` and counts its calls."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls = 0

    def health(self, timeout: float) -> object:
        self.calls += 1
        return self.answer


def test_a_probe_result_is_trusted_for_the_ttl_then_probed_again() -> None:
    clock = FakeClock()
    cache = HealthCache(ttl=30, clock=clock)
    probe = CountingProbe(False)
    assert cache.check("http://x/v1", probe, 1.0) is HealthStatus.DOWN
    clock.advance(29)
    assert cache.check("http://x/v1", probe, 1.0) is HealthStatus.DOWN
    assert probe.calls == 1
    clock.advance(2)
    assert cache.cached("http://x/v1") is None
    probe.answer = True
    assert cache.check("http://x/v1", probe, 1.0) is HealthStatus.UP
    assert probe.calls == 2


def test_warming_is_its_own_status_and_a_backend_without_probe_is_unknown() -> None:
    cache = HealthCache(clock=FakeClock())
    assert cache.check("local", CountingProbe("warming"), 1.0) is HealthStatus.WARMING
    assert cache.check("other", object(), 1.0) is HealthStatus.UNKNOWN
    assert cache.cached("other") is None  # nothing learned, nothing cached


def test_a_probe_that_raises_counts_as_down() -> None:
    class Broken:
        def health(self, timeout: float) -> bool:
            raise OSError("boom")

    assert HealthCache(clock=FakeClock()).check("x", Broken(), 1.0) is HealthStatus.DOWN


def test_cached_down_candidate_is_dropped_without_a_network_call() -> None:
    clock = FakeClock()
    with FaultServer() as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=clock)
        forge.router.health.mark(primary.base_url, HealthStatus.DOWN)
        answer = forge.chat(PROMPT)
        assert primary.requests == []
        assert answer.provider is Provider.OPENROUTER
        [drop] = answer.route.drops
        assert drop.provider is Provider.OPENAI and "health check: down" in drop.reason
        clock.advance(31)  # the entry expires: the primary is tried again
        again = forge.chat(PROMPT)
    assert again.provider is Provider.OPENAI
    assert forge.stats()["health"][primary.base_url] == "up"


def test_warming_candidate_is_still_used() -> None:
    with FaultServer() as primary:
        forge = forge_on(primary, clock=FakeClock())
        forge.router.health.mark(primary.base_url, HealthStatus.WARMING)
        assert forge.chat(PROMPT).provider is Provider.OPENAI


def test_check_health_probes_each_endpoint_once_per_ttl_without_a_chat_call() -> None:
    clock = FakeClock()
    with FaultServer() as up, FaultServer(models_status=503) as down:
        forge = forge_on(up, down, clock=clock)
        assert forge.check_health() == {"openai": "up", "openrouter": "down"}
        assert forge.check_health() == {"openai": "up", "openrouter": "down"}
        assert (len(up.probes), len(down.probes)) == (1, 1)  # cached for the TTL
        assert up.requests == [] and down.requests == []  # never a (billed) chat call
        _, drops = forge.router.plan(ChatRequest(messages=[]))
        assert [(d.provider, d.reason) for d in drops] == [
            (Provider.OPENROUTER, "health check: down (cached)")
        ]


def test_model_discovery_lists_models_and_tells_an_unlisted_model_is_down() -> None:
    clock = FakeClock()
    with FaultServer(models=("m", "other")) as server:
        forge = forge_on(server, clock=clock)
        discovery = forge.router.discovery
        listed = discovery.discover_available_models()
        assert [m.id for m in listed[Provider.OPENAI]] == ["m", "other"]
        discovery.discover_available_models()
        assert len(server.probes) == 1  # the listing is cached
        assert discovery.check_model_health("openai:m") is HealthStatus.UP
        assert discovery.check_model_health("openai:missing") is HealthStatus.DOWN
        assert discovery.check_model_health("no-provider-named") is HealthStatus.UNKNOWN
