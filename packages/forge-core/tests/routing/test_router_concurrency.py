"""The router under concurrency: one half-open probe among 50 callers; 500 requests while
circuits flip lose no answer and no count."""

from __future__ import annotations

import asyncio
from typing import Any

from fake_clock import FakeClock
from fault_server import Fault, FaultServer, forge_on, ok, slow, status
from forge_core import ChatResponse, Provider

PROMPT = "hi"


async def test_half_open_circuit_lets_exactly_one_of_50_concurrent_callers_probe() -> None:
    clock = FakeClock()
    script = [status(500)] * 3 + [slow(0.2, "probe answer")]
    with FaultServer(script) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=clock, max_retries=0)
        for _ in range(3):
            await forge.achat(PROMPT)
        assert forge.stats()["circuits"][primary.base_url]["state"] == "open"
        clock.advance(30)
        answers = await asyncio.gather(*(forge.achat(PROMPT) for _ in range(50)))
    assert len(primary.requests) == 4  # three failures, then exactly one probe
    probes = [a for a in answers if a.provider is Provider.OPENAI]
    assert [a.content for a in probes] == ["probe answer"]
    others = [a for a in answers if a.provider is Provider.OPENROUTER]
    assert len(others) == 49
    assert all(
        [d.provider for d in a.route.drops] == [Provider.OPENAI]
        and "half-open" in a.route.drops[0].reason
        for a in others
    )
    assert forge.stats()["circuits"][primary.base_url]["state"] == "closed"


async def test_500_concurrent_requests_while_circuits_flip_lose_nothing() -> None:
    clock = FakeClock()

    def flaky(n: int) -> Fault:
        # The first 100 calls fail (the circuit opens); then runs of 40 failures and 40
        # answers, so probes sometimes fail (re-open) and sometimes succeed (close).
        return status(503) if n < 100 or (n // 40) % 2 == 0 else ok("primary")

    with FaultServer(flaky) as primary, FaultServer(default=ok("backup")) as backup:
        forge = forge_on(primary, backup, clock=clock, max_retries=0, breaker_cooldown_seconds=1)
        done = asyncio.Event()

        async def tick() -> None:
            while not done.is_set():
                clock.advance(1.5)
                await asyncio.sleep(0.002)

        gate = asyncio.Semaphore(100)

        async def call() -> ChatResponse:
            async with gate:
                return await forge.achat(PROMPT)

        ticker = asyncio.ensure_future(tick())
        results: list[Any] = await asyncio.gather(
            *(call() for _ in range(500)), return_exceptions=True
        )
        done.set()
        await ticker
        served = (len(primary.requests), len(backup.requests))

    assert all(isinstance(r, ChatResponse) for r in results), [
        r for r in results if not isinstance(r, ChatResponse)
    ][:3]
    assert all(
        r.content == ("primary" if r.provider is Provider.OPENAI else "backup") for r in results
    )
    attempts = [a for r in results for a in r.route.attempts]
    stats = forge.stats()
    models = stats["models"]
    primary_stats, backup_stats = models["openai:m"], models["openrouter:m"]
    # Every attempt the trails report reached a server, and every one was counted once.
    assert (
        primary_stats["requests"]
        == served[0]
        == sum(a.provider is Provider.OPENAI for a in attempts)
    )
    assert (
        backup_stats["requests"]
        == served[1]
        == sum(a.provider is Provider.OPENROUTER for a in attempts)
    )
    assert primary_stats["successes"] + backup_stats["successes"] == 500
    assert primary_stats["failures"] == {"unavailable": served[0] - primary_stats["successes"]}
    assert backup_stats["failures"] == {}
    assert stats["circuits"][primary.base_url]["times_opened"] >= 1
    skipped = sum(1 for r in results for d in r.route.drops if d.provider is Provider.OPENAI)
    assert skipped == 500 - served[0]  # each request either called the primary or skipped it
