"""Rate budgets (``rpm``, ``tpm`` per deployment): over budget, the next candidate serves;
only when none is left does the request wait, and only as long as the first budget needs.

Fault servers on 127.0.0.1 count the chat calls each deployment really got; the fake clock
makes the one-minute window pass without waiting.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import FaultServer, ok
from forge_core import ChatRequest, FallbackFailed, Forge, ForgeConfig, Message
from forge_core.backends import build_backends
from forge_core.routing.budget import Budget, RateBudgets, estimate_tokens
from forge_core.routing.router import Router


def _endpoint(name: str, server: FaultServer, **budget: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "openai",
        "base_url": server.base_url,
        "default_model": "m",
        "api_key_env": None,
        **budget,
    }


def _forge(*endpoints: dict[str, Any], clock: FakeClock) -> Forge:
    config = ForgeConfig.model_validate(
        {
            "model_preferences": {"local_first": False},
            "providers": {
                "endpoints": list(endpoints),
                "fallback": {"order": [e["name"] for e in endpoints]},
            },
        }
    )
    return Forge(config, clock=clock, env={})


def test_over_its_rpm_a_deployment_is_skipped_and_the_next_one_serves() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary, FaultServer(default=ok("s")) as secondary:
        forge = _forge(
            _endpoint("primary", primary, rpm=3), _endpoint("secondary", secondary), clock=clock
        )
        served = [forge.chat("hi").route.deployment for _ in range(5)]
        skipped = forge.chat("hi").route
        budgets = forge.stats()["budgets"]
        calls = (len(primary.requests), len(secondary.requests))
    assert served == ["primary"] * 3 + ["secondary"] * 2
    assert calls == (3, 3)
    assert clock.sleeps == []
    (drop,) = skipped.drops
    assert drop.deployment == "primary"
    assert drop.reason.startswith("rate budget: 3 requests/min reached (frees in ")
    assert budgets == {
        "primary": {
            "rpm": 3,
            "tpm": None,
            "requests_in_window": 3,
            "tokens_in_window": 21,
            "requests_left": 0,
            "tokens_left": None,
        }
    }


def test_the_window_slides_a_request_counts_for_exactly_sixty_seconds() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary, FaultServer(default=ok("s")) as secondary:
        forge = _forge(
            _endpoint("primary", primary, rpm=2), _endpoint("secondary", secondary), clock=clock
        )
        first = forge.chat("hi").route.deployment
        clock.advance(30)
        second = forge.chat("hi").route.deployment
        clock.advance(29)
        full = forge.chat("hi").route.deployment
        clock.advance(2)  # the first request is 61 s old now: one place is free again
        freed = forge.chat("hi").route.deployment
        full_again = forge.chat("hi").route.deployment
    assert [first, second, full, freed, full_again] == [
        "primary",
        "primary",
        "secondary",
        "primary",
        "secondary",
    ]


def test_when_every_candidate_is_over_budget_the_request_waits_for_the_first_to_free() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary, FaultServer(default=ok("s")) as secondary:
        forge = _forge(
            _endpoint("primary", primary, rpm=1),
            _endpoint("secondary", secondary, rpm=1),
            clock=clock,
        )
        forge.chat("hi")
        clock.advance(10)
        forge.chat("hi")
        waited = forge.chat("hi")
        calls = (len(primary.requests), len(secondary.requests))
    # The primary's one request frees 60 s after it was sent, 50 s from now.
    assert len(clock.sleeps) == 1 and clock.sleeps[0] == pytest.approx(50, abs=0.5)
    assert waited.route.deployment == "primary"
    assert [d.deployment for d in waited.route.drops] == ["primary", "secondary"]
    assert calls == (2, 1)


def test_async_and_streamed_requests_wait_the_same_way() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary:
        forge = _forge(_endpoint("primary", primary, rpm=1), clock=clock)
        forge.chat("hi")
        answer = asyncio.run(forge.achat("hi"))
        chunks = list(forge.stream("hi"))
    assert answer.content == "p" and "".join(c.content for c in chunks) == "p"
    assert len(clock.sleeps) == 2 and all(s == pytest.approx(60, abs=0.5) for s in clock.sleeps)


def test_a_wait_longer_than_the_deadline_fails_at_once_and_names_the_budget() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary:
        config = ForgeConfig.model_validate(
            {
                "model_preferences": {"local_first": False},
                "providers": {
                    "endpoints": [_endpoint("primary", primary, rpm=1)],
                    "fallback": {"order": ["primary"]},
                },
                "routing": {"total_timeout_seconds": 30},
            }
        )
        forge = Forge(config, clock=clock, env={})
        forge.chat("hi")
        with pytest.raises(FallbackFailed) as caught:
            forge.chat("hi")
        calls = len(primary.requests)
    assert clock.sleeps == []
    assert calls == 1
    assert "rate budget: 1 request/min reached" in str(caught.value)


def test_tpm_counts_the_estimate_then_the_reported_usage() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary, FaultServer(default=ok("s")) as secondary:
        forge = _forge(
            _endpoint("primary", primary, tpm=300),
            _endpoint("secondary", secondary),
            clock=clock,
        )
        # Each reserves 1 + 200 tokens; the server reports 7 used, which is what stays counted.
        served = [forge.chat("hi", max_tokens=200).route.deployment for _ in range(3)]
        too_big = forge.chat("hi", max_tokens=400).route
        used = forge.stats()["budgets"]["primary"]["tokens_in_window"]
    assert served == ["primary"] * 3
    assert used == 3 * 7
    assert too_big.deployment == "secondary"
    assert "401 tokens is more than 300 tokens/min allows" in too_big.drops[0].reason


def test_a_budget_is_counted_per_api_key() -> None:
    clock = FakeClock()
    with FaultServer(default=ok("p")) as primary, FaultServer(default=ok("s")) as secondary:
        endpoints = [
            {**_endpoint("primary", primary, rpm=1), "api_key_env": "PRIMARY_KEY"},
            _endpoint("secondary", secondary),
        ]
        config = ForgeConfig.model_validate(
            {
                "model_preferences": {"local_first": False},
                "providers": {
                    "endpoints": endpoints,
                    "fallback": {"order": ["primary", "secondary"]},
                },
            }
        )
        one = Forge(config, clock=clock, env={"PRIMARY_KEY": "sk-team-one"})
        # Two routers share one budget store here, as processes share Redis.
        other = Router(
            config,
            build_backends(config, env={"PRIMARY_KEY": "sk-team-two"}),
            clock=clock,
            budgets=one.router.budgets,
        )
        served = [r.chat(_hi()).route.deployment for r in (one.router, one.router, other)]
        keys = set(one.router.budgets.snapshot())
    assert served == ["primary", "secondary", "primary"]
    assert len(keys) == 2 and not any("sk-team" in key for key in keys)


def test_the_memory_log_admits_at_most_the_budget_in_any_window() -> None:
    clock = FakeClock()
    budgets = RateBudgets(clock=clock)
    budget = Budget(rpm=5)
    admitted: list[float] = []
    for _ in range(40):
        reservation, wait = budgets.take("k", budget, 1)
        if reservation is not None:
            admitted.append(clock.monotonic())
        else:
            assert 0 < wait <= 60
        clock.advance(7)
    assert admitted
    for start in admitted:
        assert sum(start <= t < start + 60 for t in admitted) <= 5
    never, wait = budgets.take("k", Budget(tpm=10), 11)
    assert never is None and math.isinf(wait)


def test_the_estimate_is_prompt_characters_over_four_plus_the_answer() -> None:
    assert estimate_tokens(["abcd" * 10], 100) == 110
    assert estimate_tokens(["a"], None) == 1 + 256


def test_a_host_of_ollama_may_set_its_own_budget_or_take_the_sections() -> None:
    config = ForgeConfig.model_validate(
        {
            "providers": {
                "local": {
                    "ollama": {
                        "rpm": 100,
                        "hosts": [
                            {"name": "laptop", "base_url": "http://localhost:11434"},
                            {"name": "gpu", "base_url": "http://10.0.0.5:11434", "rpm": 600},
                        ],
                    }
                }
            }
        }
    )
    deployments = config.providers.deployments
    assert (deployments["laptop"].rpm, deployments["gpu"].rpm) == (100, 600)
    assert deployments["openai"].rpm is None


def _hi() -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")])
