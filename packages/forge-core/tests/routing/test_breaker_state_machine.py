"""The circuit breaker's state machine on a fake clock, and its probe under concurrency."""

from __future__ import annotations

import asyncio
import threading

from fake_clock import FakeClock
from forge_core.routing.breaker import BreakerRegistry, CircuitBreaker, CircuitState


def breaker(clock: FakeClock, **kwargs: float) -> CircuitBreaker:
    settings = {"failure_threshold": 3, "cooldown": 30.0, "max_cooldown": 100.0, **kwargs}
    return CircuitBreaker(
        "http://127.0.0.1:1/v1",
        failure_threshold=int(settings["failure_threshold"]),
        cooldown=settings["cooldown"],
        max_cooldown=settings["max_cooldown"],
        clock=clock,
    )


def fail(circuit: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        ticket = circuit.admit()
        assert ticket is not None
        circuit.record_failure(ticket)


def test_opens_after_three_consecutive_failures_not_before() -> None:
    circuit = breaker(FakeClock())
    fail(circuit, 2)
    assert circuit.state is CircuitState.CLOSED
    fail(circuit)
    assert circuit.state is CircuitState.OPEN
    assert circuit.admit() is None


def test_a_success_resets_the_consecutive_count() -> None:
    circuit = breaker(FakeClock())
    fail(circuit, 2)
    ticket = circuit.admit()
    assert ticket is not None
    circuit.record_success(ticket)
    fail(circuit, 2)
    assert circuit.state is CircuitState.CLOSED
    assert circuit.snapshot()["consecutive_failures"] == 2


def test_half_open_after_cooldown_then_one_probe_closes_on_success() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(29.9)
    assert circuit.state is CircuitState.OPEN
    assert circuit.admit() is None
    clock.advance(0.2)
    assert circuit.state is CircuitState.HALF_OPEN
    probe = circuit.admit()
    assert probe is not None and probe.probe
    assert circuit.admit() is None  # one probe at a time
    circuit.record_success(probe)
    assert circuit.state is CircuitState.CLOSED
    assert circuit.snapshot()["cooldown_seconds"] == 30.0
    ticket = circuit.admit()
    assert ticket is not None and not ticket.probe


def test_failed_probe_reopens_with_doubled_cooldown_capped() -> None:
    clock = FakeClock()
    circuit = breaker(clock, max_cooldown=100.0)
    fail(circuit, 3)
    expected = [60.0, 100.0, 100.0]
    waited = 30.0
    for cooldown in expected:
        clock.advance(waited)
        probe = circuit.admit()
        assert probe is not None and probe.probe
        circuit.record_failure(probe)
        assert circuit.state is CircuitState.OPEN
        assert circuit.snapshot()["cooldown_seconds"] == cooldown
        clock.advance(cooldown - 0.1)
        assert circuit.state is CircuitState.OPEN
        waited = 0.1
    assert circuit.snapshot()["times_opened"] == 4


def test_cooldown_resets_to_base_after_recovery() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(30)
    probe = circuit.admit()
    assert probe is not None
    circuit.record_failure(probe)  # cooldown 60
    clock.advance(60)
    probe = circuit.admit()
    assert probe is not None
    circuit.record_success(probe)
    fail(circuit, 3)
    assert 29.0 < circuit.retry_in() <= 30.0  # back to the base cooldown, not 120


def test_abandoned_probe_frees_the_slot_without_changing_state() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(30)
    probe = circuit.admit()
    assert probe is not None and probe.probe
    circuit.release(probe)
    assert circuit.state is CircuitState.HALF_OPEN
    again = circuit.admit()
    assert again is not None and again.probe


def test_trip_opens_a_closed_circuit_at_once() -> None:
    circuit = breaker(FakeClock())
    ticket = circuit.admit()
    assert ticket is not None
    circuit.record_failure(ticket, trip=True)
    assert circuit.state is CircuitState.OPEN


def test_half_open_lets_exactly_one_of_50_threads_probe() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(30)
    start = threading.Barrier(50)
    tickets = []
    lock = threading.Lock()

    def call() -> None:
        start.wait()
        ticket = circuit.admit()
        with lock:
            tickets.append(ticket)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    admitted = [t for t in tickets if t is not None]
    assert len(tickets) == 50
    assert len(admitted) == 1 and admitted[0].probe


async def test_half_open_lets_exactly_one_of_50_tasks_probe() -> None:
    clock = FakeClock()
    circuit = breaker(clock)
    fail(circuit, 3)
    clock.advance(30)

    async def call() -> bool:
        await asyncio.sleep(0)
        ticket = circuit.admit()
        await asyncio.sleep(0)
        return ticket is not None

    results = await asyncio.gather(*(call() for _ in range(50)))
    assert sum(results) == 1


def test_registry_keeps_one_breaker_per_endpoint() -> None:
    registry = BreakerRegistry(failure_threshold=1, clock=FakeClock())
    first = registry.get("http://a/v1")
    assert registry.get("http://a/v1") is first
    fail(first)
    assert registry.get("http://b/v1").state is CircuitState.CLOSED
    snapshot = registry.snapshot()
    assert snapshot["http://a/v1"]["state"] == "open"
    assert snapshot["http://b/v1"]["state"] == "closed"
