"""The bookkeeping balancing reads: attempts in flight, recent latency, loaded models.

`DeploymentLoad` counts what the router tells it; `ResidentModels` caches each host's
``/api/ps`` and never holds planning longer than its bounded wait. No server here: the
listing is a function the test controls.
"""

from __future__ import annotations

import threading

import pytest
from fake_clock import FakeClock
from forge_core.routing.load import DeploymentLoad, ResidentModels, in_listing, latency_band

HOST = "http://127.0.0.1:1"


def test_in_flight_counts_attempts_until_each_has_ended_once() -> None:
    load = DeploymentLoad()
    first = load.started(HOST, "m")
    load.started(HOST, "other")
    first.ended(0.5)
    first.ended(0.5)  # idempotent: a second end changes nothing
    assert load.in_flight(HOST) == 1
    assert load.in_flight("http://elsewhere") == 0
    assert load.latency(HOST, "m") == 0.5


def test_ranks_put_fewer_in_flight_first_then_a_faster_band_and_unmeasured_first() -> None:
    load = DeploymentLoad(smoothing=1.0)
    for endpoint, seconds in (("slow", 0.2), ("fast", 0.1), ("close", 0.105), ("busy", 0.01)):
        load.started(endpoint, "m").ended(seconds)
    held = load.started("busy", "m")
    ranks = dict(
        zip(
            ["slow", "fast", "close", "busy", "new"],
            load.ranks(["slow", "fast", "close", "busy", "new"], "m"),
            strict=True,
        )
    )
    held.ended()
    # Never measured: first, so it gets measured. 5% apart: one band (equally fast).
    assert ranks["new"] < ranks["fast"] == ranks["close"] < ranks["slow"] < ranks["busy"]
    assert load.ranks(["busy"], "other model") == [0]
    assert latency_band(None) == 0 < latency_band(1e-9) == latency_band(1e-6) == 1


def test_latency_is_a_moving_average_of_first_token_times() -> None:
    load = DeploymentLoad(smoothing=0.5)
    streamed = load.started(HOST, "m")
    streamed.first_token(1.0)
    streamed.ended(9.0)  # the stream's end is not a second sample
    failed = load.started(HOST, "m")
    failed.ended()  # a failure adds no sample
    answered = load.started(HOST, "m")
    answered.ended(3.0)
    assert load.latency(HOST, "m") == pytest.approx(2.0)
    assert load.snapshot()[HOST] == {
        "in_flight": 0,
        "loading": [],
        "latency_ms": {"m": pytest.approx(2000.0)},
    }


def test_a_cold_start_is_loading_until_its_first_token() -> None:
    load = DeploymentLoad()
    cold = load.started(HOST, "m", loading=True)
    warm = load.started(HOST, "m")
    assert (cold.loading, warm.loading, load.loading(HOST)) == (True, False, ["m"])
    cold.first_token(30.0)
    assert (load.loading(HOST), load.in_flight(HOST)) == ([], 2)


def test_a_cancelled_cold_start_stops_loading_and_leaves_no_count() -> None:
    load = DeploymentLoad()
    load.started(HOST, "m", loading=True).ended()
    assert (load.loading(HOST), load.in_flight(HOST), load.latency(HOST, "m")) == ([], 0, None)


def test_a_bare_model_name_matches_its_latest_tag() -> None:
    names = frozenset({"llama3.2:latest", "qwen:7b"})
    assert in_listing("llama3.2", names) and in_listing("qwen:7b", names)
    assert not in_listing("qwen", names) and not in_listing("llama3.2:1b", names)


def test_a_listing_is_trusted_for_its_ttl_then_asked_again() -> None:
    clock = FakeClock()
    asked: list[int] = []

    def listing() -> list[str]:
        asked.append(1)
        return ["m:latest"]

    resident = ResidentModels(clock=clock, ttl=2.0)
    assert resident.names({HOST: listing}) == {HOST: frozenset({"m:latest"})}
    resident.names({HOST: listing})
    assert len(asked) == 1
    clock.advance(2.5)
    resident.names({HOST: listing})
    assert len(asked) == 2


def test_a_failed_listing_is_unknown_and_not_asked_again_until_the_retry_time() -> None:
    clock = FakeClock()
    asked: list[int] = []

    def refused() -> list[str]:
        asked.append(1)
        raise ConnectionRefusedError("no /api/ps here")

    resident = ResidentModels(clock=clock, ttl=2.0, retry=30.0)
    assert resident.names({HOST: refused}) == {HOST: None}
    clock.advance(5.0)
    assert resident.names({HOST: refused}) == {HOST: None}
    assert len(asked) == 1
    clock.advance(30.0)
    resident.names({HOST: refused})
    assert len(asked) == 2


def test_a_slow_listing_does_not_hold_the_caller_and_is_used_once_it_arrives() -> None:
    release = threading.Event()

    def slow() -> list[str]:
        release.wait(10)
        return ["m"]

    resident = ResidentModels(clock=FakeClock(), wait=0.05)
    # The listing is still blocked when the answer comes: the caller did not wait for it.
    assert resident.names({HOST: slow}) == {HOST: None}
    release.set()
    for thread in threading.enumerate():
        if thread.name == "forge-api-ps":
            thread.join(10)
    assert resident.names({HOST: slow}) == {HOST: frozenset({"m"})}


def test_an_answer_marks_the_model_loaded_before_the_next_listing() -> None:
    resident = ResidentModels(clock=FakeClock())
    resident.names({HOST: lambda: []})
    resident.mark_loaded(HOST, "m")
    assert resident.names({HOST: lambda: []}) == {HOST: frozenset({"m"})}
