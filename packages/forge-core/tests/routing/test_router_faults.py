"""Each fault of a real (fault-injecting) endpoint: exact attempts, answer or error, trail."""

from __future__ import annotations

import pytest
from fake_clock import FakeClock
from fault_server import (
    FaultServer,
    forge_on,
    hang,
    malformed_json,
    rate_limited,
    reset,
    slow,
    status,
)
from forge_core import FallbackFailed, Forge, Provider
from forge_test_support import closed_port_url, config_for

PROMPT = "hi"


def kinds(route: object) -> list[tuple[str, str | None]]:
    attempts = route.attempts  # type: ignore[attr-defined]
    return [(a.provider.value, None if a.ok else a.error_kind) for a in attempts]


def test_5xx_is_retried_on_the_same_candidate_with_growing_backoff() -> None:
    clock = FakeClock()
    with FaultServer([status(503), status(502)]) as server:
        forge = forge_on(server, clock=clock)
        answer = forge.chat(PROMPT)
    assert answer.content == "hello from the fault server"
    assert kinds(answer.route) == [
        ("openai", "unavailable"),
        ("openai", "unavailable"),
        ("openai", None),
    ]
    assert "HTTP 503" in (answer.route.attempts[0].message or "")
    assert "HTTP 502" in (answer.route.attempts[1].message or "")
    assert len(server.requests) == 3
    first, second = clock.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 1.5  # 0.5 * 2**n + up to 0.5 jitter


def test_a_500_fails_over_at_once_while_another_candidate_is_left() -> None:
    clock = FakeClock()
    with FaultServer([status(500)] * 3) as primary, FaultServer() as backup:
        answer = forge_on(primary, backup, clock=clock).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "unavailable"), ("openrouter", None)]
    assert answer.provider is Provider.OPENROUTER
    assert (len(primary.requests), len(backup.requests)) == (1, 1)
    assert clock.sleeps == []


def test_retry_before_failover_always_retries_a_500_with_backoff_first() -> None:
    clock = FakeClock()
    with FaultServer([status(500)] * 3) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=clock, retry_before_failover="always")
        answer = forge.chat(PROMPT)
    assert kinds(answer.route) == [("openai", "unavailable")] * 3 + [("openrouter", None)]
    assert answer.provider is Provider.OPENROUTER
    assert (len(primary.requests), len(backup.requests)) == (3, 1)
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize(
    ("setting", "served_by", "sleeps"),
    [("never", "openai", 0), ("local", "ollama", 1)],
)
def test_retry_before_failover_local_retries_the_local_candidate_before_the_cloud(
    setting: str, served_by: str, sleeps: int
) -> None:
    clock = FakeClock()
    with FaultServer([status(502)]) as local, FaultServer() as cloud:
        config = config_for(
            {"name": "ollama", "base_url": local.root_url, "preferred_models": ["m"]},
            {"name": "openai", "base_url": cloud.base_url, "default_model": "m"},
            routing={"retry_before_failover": setting},
        )
        answer = Forge(config, clock=clock).chat(PROMPT)
    assert answer.route.attempts[0].provider is Provider.OLLAMA
    assert answer.provider.value == served_by
    assert len(clock.sleeps) == sleeps
    assert len(cloud.requests) == (1 if served_by == "openai" else 0)


@pytest.mark.parametrize("fault", [rate_limited(5), status(529, "overloaded")], ids=["429", "529"])
def test_rate_limit_fails_over_at_once_instead_of_sleeping(fault: object) -> None:
    clock = FakeClock()
    with FaultServer([fault]) as primary, FaultServer() as backup:  # type: ignore[list-item]
        answer = forge_on(primary, backup, clock=clock).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "rate_limited"), ("openrouter", None)]
    assert clock.sleeps == []
    assert (len(primary.requests), len(backup.requests)) == (1, 1)


def test_retry_after_seconds_is_waited_when_no_other_candidate() -> None:
    clock = FakeClock()
    with FaultServer([rate_limited(2)]) as server:
        answer = forge_on(server, clock=clock).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "rate_limited"), ("openai", None)]
    assert clock.sleeps == [2.0]


def test_retry_after_http_date_is_waited_when_no_other_candidate() -> None:
    clock = FakeClock()
    with FaultServer([rate_limited(3, http_date=True)]) as server:
        answer = forge_on(server, clock=clock).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "rate_limited"), ("openai", None)]
    [waited] = clock.sleeps
    assert 1.0 < waited <= 3.0  # an HTTP date has whole seconds


def test_retry_after_beyond_the_cap_is_not_waited_out() -> None:
    clock = FakeClock()
    with FaultServer([rate_limited(120)]) as server:
        forge = forge_on(server, clock=clock, retry_after_cap_seconds=30)
        with pytest.raises(FallbackFailed) as caught:
            forge.chat(PROMPT)
    assert kinds(caught.value.route) == [("openai", "rate_limited")]
    assert clock.sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (status(401, "Incorrect API key"), "auth"),
        (status(404, "model m not found"), "model_not_found"),
    ],
    ids=["401", "404"],
)
def test_auth_and_unknown_model_fail_over_without_retry(fault: object, kind: str) -> None:
    clock = FakeClock()
    with FaultServer([fault]) as primary, FaultServer() as backup:  # type: ignore[list-item]
        answer = forge_on(primary, backup, clock=clock).chat(PROMPT)
    assert kinds(answer.route) == [("openai", kind), ("openrouter", None)]
    assert clock.sleeps == [] and len(primary.requests) == 1


def test_400_is_not_retried() -> None:
    clock = FakeClock()
    with (
        FaultServer([status(400, "bad field")]) as server,
        pytest.raises(FallbackFailed) as caught,
    ):
        forge_on(server, clock=clock).chat(PROMPT)
    assert kinds(caught.value.route) == [("openai", "bad_request")]
    assert len(server.requests) == 1


def test_malformed_json_fails_over_at_once_with_a_backup() -> None:
    with FaultServer([malformed_json()]) as primary, FaultServer() as backup:
        answer = forge_on(primary, backup, clock=FakeClock()).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "malformed_response"), ("openrouter", None)]
    assert len(primary.requests) == 1


def test_malformed_json_is_retried_when_alone() -> None:
    with FaultServer([malformed_json()]) as server:
        answer = forge_on(server, clock=FakeClock()).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "malformed_response"), ("openai", None)]


def test_refused_connection_is_not_retried_and_fails_over() -> None:
    clock = FakeClock()
    dead = closed_port_url() + "/v1"
    with FaultServer() as backup:
        answer = forge_on(dead, backup, clock=clock).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "unavailable"), ("openrouter", None)]
    assert "connection refused" in (answer.route.attempts[0].message or "")
    assert clock.sleeps == []


def test_connection_reset_without_answer_fails_over() -> None:
    with FaultServer([reset()]) as primary, FaultServer() as backup:
        answer = forge_on(primary, backup, clock=FakeClock()).chat(PROMPT)
    assert kinds(answer.route) == [("openai", "unavailable"), ("openrouter", None)]


def test_hung_endpoint_times_out_at_the_first_token_limit_and_fails_over() -> None:
    with FaultServer([hang()]) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), first_token_timeout_seconds=0.3)
        answer = forge.chat(PROMPT)
        assert primary.requests[0].client_closed.wait(5)
    assert kinds(answer.route) == [("openai", "timeout"), ("openrouter", None)]
    assert "first-token timeout" in (answer.route.attempts[0].message or "")


async def test_async_hung_endpoint_times_out_at_the_first_token_limit() -> None:
    with FaultServer([hang()]) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), first_token_timeout_seconds=0.3)
        answer = await forge.achat(PROMPT)
    assert kinds(answer.route) == [("openai", "timeout"), ("openrouter", None)]
    assert "first-token timeout" in (answer.route.attempts[0].message or "")


def test_a_slow_answer_inside_the_limits_is_not_a_failure() -> None:
    with FaultServer([slow(0.2, "late but fine")]) as server:
        answer = forge_on(server, clock=FakeClock(), first_token_timeout_seconds=10).chat(PROMPT)
    assert answer.content == "late but fine"
    assert kinds(answer.route) == [("openai", None)]


def test_timeout_opens_the_circuit_so_only_the_first_call_waits() -> None:
    with FaultServer(default=hang()) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), first_token_timeout_seconds=0.3)
        first = forge.chat(PROMPT)
        second = forge.chat(PROMPT)
    assert kinds(first.route) == [("openai", "timeout"), ("openrouter", None)]
    assert kinds(second.route) == [("openrouter", None)]
    assert "circuit open" in second.route.drops[0].reason
    assert len(primary.requests) == 1


def test_retries_times_fallbacks_are_bounded_by_the_overall_deadline() -> None:
    clock = FakeClock()
    with FaultServer(default=status(503)) as first, FaultServer(default=status(503)) as second:
        forge = forge_on(
            first,
            second,
            clock=clock,
            max_retries=10,
            retry_initial_backoff_seconds=1,
            retry_jitter_seconds=0,
            total_timeout_seconds=5,
            breaker_failure_threshold=100,
            retry_before_failover="always",
        )
        with pytest.raises(FallbackFailed) as caught:
            forge.chat(PROMPT)
    # first: try, 1 s, try, 2 s, try, (4 s would pass the deadline); second: try, 1 s, try.
    assert clock.sleeps == [1.0, 2.0, 1.0]
    assert (len(first.requests), len(second.requests)) == (3, 2)
    assert (
        kinds(caught.value.route)
        == [("openai", "unavailable")] * 3 + [("openrouter", "unavailable")] * 2
    )


def test_open_circuit_skips_provider_without_network_then_probe_closes_it() -> None:
    clock = FakeClock()
    with FaultServer([status(500)] * 3) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=clock, max_retries=0)
        for _ in range(3):
            assert forge.chat(PROMPT).provider is Provider.OPENROUTER
        skipped = forge.chat(PROMPT)
        assert len(primary.requests) == 3  # no network call while open
        assert kinds(skipped.route) == [("openrouter", None)]
        [drop] = skipped.route.drops
        assert drop.provider is Provider.OPENAI and "circuit open" in drop.reason
        assert forge.stats()["circuits"][primary.base_url]["state"] == "open"
        clock.advance(30)
        probed = forge.chat(PROMPT)
    assert kinds(probed.route) == [("openai", None)]
    assert len(primary.requests) == 4
    assert forge.stats()["circuits"][primary.base_url]["state"] == "closed"


def test_stats_count_requests_successes_and_failures_by_kind() -> None:
    with FaultServer([status(500), rate_limited(1)]) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), retry_before_failover="always")
        forge.chat(PROMPT)  # 500 (retried), then 429 -> fail over
        forge.chat(PROMPT)  # ok
    models = forge.stats()["models"]
    assert models["openai:m"]["requests"] == 3
    assert models["openai:m"]["successes"] == 1
    assert models["openai:m"]["failures"] == {"unavailable": 1, "rate_limited": 1}
    assert models["openrouter:m"]["requests"] == 1
    assert models["openrouter:m"]["successes"] == 1
    latency = models["openai:m"]["latency_ms"]
    assert latency["p50"] is not None and latency["p50"] <= latency["p99"]


def test_all_failed_lists_every_attempt_in_the_error() -> None:
    with (
        FaultServer([status(401)]) as primary,
        FaultServer([status(404)]) as backup,
        pytest.raises(FallbackFailed) as caught,
    ):
        forge_on(primary, backup, clock=FakeClock()).chat(PROMPT)
    lines = str(caught.value).splitlines()
    assert lines[0] == "every provider failed:"
    assert "openai:m -> auth: openai: HTTP 401" in lines[1]
    assert "openrouter:m -> model_not_found: openrouter: HTTP 404" in lines[2]


async def test_total_deadline_ends_a_hung_call_and_skips_the_rest() -> None:
    with FaultServer([hang()]) as primary, FaultServer() as backup:
        forge = forge_on(primary, backup, clock=FakeClock(), total_timeout_seconds=0.4)
        with pytest.raises(FallbackFailed) as caught:
            await forge.achat(PROMPT)
    route = caught.value.route
    assert kinds(route) == [("openai", "timeout")]
    assert route.attempts[0].message == "openai:m: total timeout: total deadline within 0.4s"
    assert [(d.provider, d.reason) for d in route.drops] == [
        (Provider.OPENROUTER, "total deadline passed before this candidate")
    ]
    assert backup.requests == []
    assert str(caught.value).startswith("every provider failed (some timed out):")
