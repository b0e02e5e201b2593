"""`ProviderSelector` over the router: order, requirements, circuits, local_only."""

from __future__ import annotations

from fake_clock import FakeClock
from fault_server import FaultServer, forge_on, status
from forge_core import ModelRequirements, Provider
from forge_core.routing.health import HealthStatus
from forge_core.routing.selector import ProviderSelector


def test_select_provider_follows_its_own_preference_order() -> None:
    with FaultServer() as first, FaultServer() as second:
        forge = forge_on(first, second, clock=FakeClock())
        selector = ProviderSelector(forge.router, preference_order=["openrouter", "openai"])
        chosen = selector.select_provider(ModelRequirements(tools=True))
        assert chosen is not None and chosen.provider is Provider.OPENROUTER
        assert first.requests == [] and second.requests == []  # selection makes no call


def test_open_circuit_and_local_only_are_drops_with_reasons() -> None:
    with FaultServer(default=status(500)) as first, FaultServer() as second:
        forge = forge_on(first, second, clock=FakeClock(), max_retries=0)
        for _ in range(3):
            forge.chat("hi")
        selector = ProviderSelector(forge.router, preference_order=["openai", "openrouter"])
        usable, drops = selector.candidates()
        assert [c.provider for c in usable] == [Provider.OPENROUTER]
        assert drops[0].provider is Provider.OPENAI and "circuit open" in drops[0].reason
        assert selector.select_provider(local_only=True) is None
        _, local_drops = selector.candidates(local_only=True)
        assert {d.reason for d in local_drops} >= {"local_only: cloud not allowed"}


def test_fallback_disabled_selects_only_the_first_preference() -> None:
    with FaultServer() as first, FaultServer() as second:
        forge = forge_on(first, second, clock=FakeClock())
        selector = ProviderSelector(
            forge.router, preference_order=["openai", "openrouter"], fallback_enabled=False
        )
        usable, _ = selector.candidates()
        assert [c.provider for c in usable] == [Provider.OPENAI]


def test_selector_health_uses_the_shared_cache() -> None:
    with FaultServer() as up, FaultServer(models_status=503) as down:
        forge = forge_on(up, down, clock=FakeClock())
        selector = ProviderSelector(forge.router, preference_order=["openai", "openrouter"])
        assert selector.check_health() == {
            Provider.OPENAI: HealthStatus.UP,
            Provider.OPENROUTER: HealthStatus.DOWN,
        }
        assert selector.select_provider() is not None
        assert selector.select_provider().provider is Provider.OPENAI  # type: ignore[union-attr]
        _, drops = selector.candidates()
        assert [(d.provider, d.reason) for d in drops] == [
            (Provider.OPENROUTER, "health check: down (cached)")
        ]
