"""A request plans only as far as it goes (#15's planning cost with many deployments).

The router plans the first candidate, tries it, and plans the next one only when it needs it
(`Plan`); a balanced entry ranks all its deployments of a model first. `Planner.plan` still
plans everything. Every server here is a real socket server on 127.0.0.1.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import FaultServer, ok, ollama_hosts_on
from forge_core import ChatRequest, FallbackFailed, Forge, ForgeConfig
from forge_core._caches import CACHE_LIMIT
from forge_core.routing.planning.candidates import Plan
from forge_test_support import closed_port_url

#: A public address: a deployment there is not local, so ``local_only`` drops it.
PUBLIC = "https://llm.example.com/v1"


def _endpoints(*urls: str, **routing: Any) -> ForgeConfig:
    """One named OpenAI-compatible endpoint per URL (``ep0``, ``ep1``, ...), one order entry
    each, in that order."""
    names = [f"ep{i}" for i in range(len(urls))]
    return ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": {
                "endpoints": [
                    {"name": name, "kind": "openai", "base_url": url, "default_model": "m"}
                    for name, url in zip(names, urls, strict=True)
                ],
                "fallback": {"order": names},
            },
            "routing": routing,
        }
    )


def _count_capability_checks(forge: Forge, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts, per deployment, how often planning asks its backend what a model can do."""
    asked: Counter[str] = Counter()
    for name, backend in forge.router.backends.items():
        original = backend.capabilities

        def spy(model: str, name: str = name, original: Any = original) -> Any:
            asked[name] += 1
            return original(model)

        monkeypatch.setattr(backend, "capabilities", spy)
    return asked


def test_a_request_the_first_of_fifty_answers_plans_two_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FaultServer(default=ok("from ep0")) as live:
        forge = Forge(_endpoints(live.base_url, *[closed_port_url()] * 49), clock=FakeClock())
        asked = _count_capability_checks(forge, monkeypatch)
        answers = [forge.chat("hi") for _ in range(3)]
    assert [a.content for a in answers] == ["from ep0"] * 3
    # Per request, the first to call and the second to know a fallback remains (the retry
    # policy asks); the other 48 are never looked at.
    assert asked == {"ep0": 3, "ep1": 3}
    full, _ = forge.router.plan(ChatRequest(messages=[]))
    assert len(full) == 50 and sum(asked.values()) == 6 + 50


def test_the_full_plan_still_lists_every_candidate_and_drop() -> None:
    forge = Forge(_endpoints("http://127.0.0.1:9/v1", *[PUBLIC] * 4), clock=FakeClock())
    request = ChatRequest(messages=[], local_only=True)
    candidates, drops = forge.router.plan(request)
    assert [c.deployment for c in candidates] == ["ep0"]
    assert [d.deployment for d in drops] == ["ep1", "ep2", "ep3", "ep4"]
    everything, _ = forge.router.plan(ChatRequest(messages=[]))
    assert [c.deployment for c in everything] == [f"ep{i}" for i in range(5)]


def test_a_failed_first_candidate_plans_on_and_the_trail_keeps_every_drop_reached() -> None:
    with FaultServer(default=ok("from ep3")) as live:
        config = _endpoints(closed_port_url(), PUBLIC, PUBLIC, live.base_url, PUBLIC)
        forge = Forge(config, clock=FakeClock())
        answer = forge.chat("hi", local_only=True)
    assert (answer.content, answer.route.deployment) == ("from ep3", "ep3")
    assert [a.deployment for a in answer.route.attempts] == ["ep0", "ep3"]
    # ep4 follows the one that answered: only the retry policy's look ahead reached it.
    assert [d.deployment for d in answer.route.drops] == ["ep1", "ep2", "ep4"]


def test_when_none_answers_the_error_carries_every_attempt_and_drop() -> None:
    forge = Forge(_endpoints(closed_port_url(), PUBLIC, closed_port_url()), clock=FakeClock())
    with pytest.raises(FallbackFailed) as caught:
        forge.chat("hi", local_only=True)
    route = caught.value.route
    assert route is not None
    assert [a.deployment for a in route.attempts] == ["ep0", "ep2"]
    assert [d.deployment for d in route.drops] == ["ep1"]


def test_a_plan_is_a_sequence_that_plans_as_it_is_read() -> None:
    forge = Forge(_endpoints(*["http://127.0.0.1:9/v1"] * 3, PUBLIC), clock=FakeClock())
    request = ChatRequest(messages=[], local_only=True)
    plan = forge.router.planner.lazy(request)
    assert isinstance(plan, Plan) and plan.drops == []
    assert plan.first() is not None and plan.first() is plan[0]
    assert plan.has_after(1)
    assert plan.drops == []  # ep3 is not reached until a fourth candidate is asked for
    assert not plan.has_after(2)
    assert [d.deployment for d in plan.drops] == ["ep3"]
    assert [c.deployment for c in plan] == ["ep0", "ep1", "ep2"]
    assert len(plan) == 3 and plan[-1].deployment == "ep2"
    assert [d.deployment for d in plan.drops] == ["ep3"]
    full, drops = forge.router.plan(request)
    assert list(plan) == full and plan.drops == drops


def test_a_balanced_entry_ranks_all_its_hosts_and_skips_dead_ones_without_asking_them() -> None:
    with (
        FaultServer(default=ok("from a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=[]) as host_b,
        FaultServer(default=ok("from c"), loaded=["m"]) as host_c,
    ):
        config = ForgeConfig.model_validate(ollama_hosts_on(host_a, host_b, host_c))
        forge = Forge(config, clock=FakeClock())
        breaker = forge.router.breakers.get(host_a.root_url)
        breaker.record_failure(breaker.admit() or pytest.fail("closed"), trip=True)
        answers = [forge.chat("hi") for _ in range(4)]
    # host-a's circuit is open: it is dropped before the ranking and never asked /api/ps;
    # host-c has the model loaded, so it serves every request, ahead of host-b.
    assert {a.route.deployment for a in answers} == {"host-c"}
    assert "/api/ps" not in host_a.probes and "/api/ps" in host_b.probes
    reasons = [d.reason for d in answers[0].route.drops]
    assert [d.deployment for d in answers[0].route.drops] == ["host-a"]
    assert reasons[0].startswith("circuit open at")


def test_pinning_many_distinct_models_keeps_the_planner_caches_bounded() -> None:
    forge = Forge(_endpoints("http://127.0.0.1:9/v1"), clock=FakeClock())
    planner = forge.router.planner
    for i in range(CACHE_LIMIT + 50):
        candidates, _ = forge.router.plan(ChatRequest(messages=[], model=f"ep0:model-{i}"))
        assert [c.model for c in candidates] == [f"model-{i}"]
    assert len(planner._plans) <= CACHE_LIMIT
    assert len(planner._candidates) <= CACHE_LIMIT


def test_a_balanced_entry_drops_a_host_cached_down_and_takes_it_back_once_it_is_up() -> None:
    from forge_core.routing.health import HealthStatus

    with (
        FaultServer(default=ok("from a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=[]) as host_b,
    ):
        config = ForgeConfig.model_validate(ollama_hosts_on(host_a, host_b))
        forge = Forge(config, clock=FakeClock())
        forge.router.health.mark(host_a.root_url, HealthStatus.DOWN)
        down = forge.chat("hi")
        forge.router.health.mark(host_a.root_url, HealthStatus.UP)
        # Another prompt: "hi" again would go back to host-b, which holds it now (affinity).
        up = forge.chat("hello")
    assert down.route.deployment == "host-b"
    assert [(d.deployment, d.reason) for d in down.route.drops] == [
        ("host-a", "health check: down (cached)")
    ]
    assert up.route.deployment == "host-a" and up.route.drops == []
