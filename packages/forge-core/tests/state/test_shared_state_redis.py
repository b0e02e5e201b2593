"""Routing state shared by a fleet on a real ``redis-server`` (``routing.state.backend: redis``).

Worker processes (`redis_server.ForgeWorker`, spawned, each with threads) route to fault
servers on 127.0.0.1 that count every chat call; Redis is started, killed and paused by the
tests. Nothing here waits for time to pass except a breaker cooldown, which is real time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dialect_servers import SelfDescribingServer, refuse_json_schema_like_llama_cpp_python
from fault_server import FaultServer, hang, held, ok, ollama_hosts_on
from forge_cli_runner import forge_cli, write_config
from forge_core import Forge, ForgeConfig
from redis_server import ForgeWorker, RedisServer, chat_everywhere, fleet, run_redis

pytestmark = pytest.mark.redis_server

FIRST_TOKEN_TIMEOUT = 1.0


def _fleet_config(
    redis_url: str,
    primary: FaultServer,
    secondary: FaultServer,
    *,
    prefix: str,
    cooldown: float = 30.0,
    **state: Any,
) -> dict[str, Any]:
    """Two named OpenAI-compatible deployments, ``primary`` before ``secondary``."""
    return {
        "model_preferences": {"local_first": False},
        "providers": {
            "endpoints": [
                {
                    "name": "primary",
                    "kind": "openai",
                    "base_url": primary.base_url,
                    "default_model": "m",
                    "api_key_env": None,
                },
                {
                    "name": "secondary",
                    "kind": "openai",
                    "base_url": secondary.base_url,
                    "default_model": "m",
                    "api_key_env": None,
                },
            ],
            "fallback": {"order": ["primary", "secondary"]},
        },
        "routing": {
            "first_token_timeout_seconds": FIRST_TOKEN_TIMEOUT,
            "max_retries": 0,
            "breaker_cooldown_seconds": cooldown,
            "state": {"backend": "redis", "url": redis_url, "key_prefix": prefix, **state},
        },
    }


def _forge(config: dict[str, Any]) -> Forge:
    return Forge(ForgeConfig.model_validate(config), env={})


def _served_by(outcomes: list[tuple[str | None, str | None]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for deployment, error in outcomes:
        key = deployment if error is None else f"error: {error}"
        counts[str(key)] = counts.get(str(key), 0) + 1
    return counts


def test_after_the_first_timeout_anywhere_the_other_processes_skip_the_stalled_primary(
    redis_server: RedisServer,
) -> None:
    with FaultServer(default=hang()) as primary, FaultServer(default=ok("second")) as secondary:
        config = _fleet_config(redis_server.url, primary, secondary, prefix="stalled")
        with fleet(config, 3) as workers:
            first = _forge(config).chat("Say hi.")
            # The one timeout anywhere: the primary stalled, the secondary answered.
            assert [(a.deployment, a.error_kind) for a in first.route.attempts] == [
                ("primary", "timeout"),
                ("secondary", None),
            ]
            outcomes = chat_everywhere(workers, threads=3, per_thread=4)
        chat_calls_to_primary = len(primary.requests)
    assert _served_by(outcomes) == {"secondary": 36}
    assert chat_calls_to_primary == 1


def test_after_the_cooldown_exactly_one_probe_crosses_all_processes_and_threads(
    redis_server: RedisServer,
) -> None:
    cooldown = 1.0
    # Every call to the primary stalls: the one that opens the circuit and the probe.
    with FaultServer(default=hang()) as primary, FaultServer(default=ok("second")) as secondary:
        config = _fleet_config(
            redis_server.url, primary, secondary, prefix="probe", cooldown=cooldown
        )
        with fleet(config, 4, threads_each=4) as workers:
            opener = _forge(config)
            opener.chat("Say hi.")
            breaker = opener.router.breakers.get(primary.base_url)
            assert breaker.state.value == "open"
            deadline = time.monotonic() + cooldown + 10
            while breaker.state.value == "open":
                assert time.monotonic() < deadline, "the cooldown never ended"
                time.sleep(0.02)
            # Cooldown over: 16 threads in 4 processes start together, one request each.
            outcomes = chat_everywhere(workers, threads=4, per_thread=1)
        chat_calls_to_primary = len(primary.requests)
    # The opening call, then exactly one probe fleet-wide (it stalled too: re-opened).
    assert chat_calls_to_primary == 2
    assert _served_by(outcomes) == {"secondary": 16}


def test_an_rpm_budget_holds_across_four_processes_and_the_rest_is_served_by_the_second(
    redis_server: RedisServer,
) -> None:
    with FaultServer(default=ok("first")) as primary, FaultServer(default=ok("second")) as second:
        config = _fleet_config(redis_server.url, primary, second, prefix="rpm")
        config["providers"]["endpoints"][0]["rpm"] = 60
        # 4 processes x 5 threads x 10 requests = 200, well within the minute.
        with fleet(config, 4, threads_each=5) as workers:
            outcomes = chat_everywhere(workers, threads=5, per_thread=10)
        calls = (len(primary.requests), len(second.requests))
    assert _served_by(outcomes) == {"primary": 60, "secondary": 140}
    assert calls == (60, 140)


def test_balancing_counts_the_requests_other_processes_have_in_flight(
    redis_server: RedisServer,
) -> None:
    release = threading.Event()
    with (
        FaultServer([held(release, "from a")], default=ok("from a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
    ):
        state = {"backend": "redis", "url": redis_server.url, "key_prefix": "load"}
        config = ollama_hosts_on(host_a, host_b, state=state)
        with ForgeWorker(config) as worker:
            worker.ready()
            worker.send_chat(threads=1, per_thread=1)
            assert host_a.wait_for_requests(1)
            here = _forge(config)
            # Both hosts have the model loaded and this process has nothing in flight: only
            # the worker's request at host-a, seen through Redis, tells them apart.
            deadline = time.monotonic() + 10
            while here.router.load.in_flight(host_a.root_url) == 0:
                assert time.monotonic() < deadline, "the worker's load never reached Redis"
                time.sleep(0.01)
            during = here.chat("two").route.deployment
            release.set()
            worker_served = worker.served()
    assert during == "host-b"
    assert worker_served == [("host-a", None)]


def test_what_one_process_learned_from_a_refusal_the_others_apply_at_once(
    redis_server: RedisServer,
) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    structured = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}

    def config(cache_ttl: float) -> ForgeConfig:
        return ForgeConfig.model_validate(
            {
                "model_preferences": {"local_first": False},
                "providers": {
                    "endpoints": [
                        {
                            "name": "local-llama",
                            "kind": "openai",
                            "base_url": server.base_url,
                            "default_model": "m",
                            "api_key_env": None,
                        }
                    ],
                    "fallback": {"order": ["local-llama"]},
                },
                "routing": {
                    "state": {
                        "backend": "redis",
                        "url": redis_server.url,
                        "key_prefix": "lessons",
                        # Another cache_ttl is another store, as another process has.
                        "cache_ttl_seconds": cache_ttl,
                    }
                },
            }
        )

    with SelfDescribingServer(refuses=refuse_json_schema_like_llama_cpp_python) as server:
        learner = Forge(config(0.02), env={})
        learner.chat("hi", max_tokens=8, response_format=structured)
        taught = Forge(config(0.021), env={})
        assert taught.router.shared is not learner.router.shared
        taught.chat("hi", max_tokens=8, response_format=structured)
        formats = [seen.body["response_format"]["type"] for seen in server.requests]
    # The learner was refused once and retried as json_object + schema; the other process
    # sent that form at once.
    assert formats == ["json_schema", "json_object", "json_object"]


def test_a_redis_that_dies_mid_run_loses_no_request_and_state_is_shared_when_it_is_back() -> None:
    with (
        run_redis() as redis,
        FaultServer(default=ok("first")) as primary,
        FaultServer(default=ok("second")) as secondary,
    ):
        config = _fleet_config(
            redis.url, primary, secondary, prefix="outage", retry_interval_seconds=0.2
        )
        with ForgeWorker(config) as worker:
            worker.ready()
            assert _served_by(worker.chat(threads=2, per_thread=5)) == {"primary": 10}
            redis.kill()
            assert _served_by(worker.chat(threads=2, per_thread=10)) == {"primary": 20}
            # Requests read the view they have until it is due again (20 ms), so the 20 may all
            # be done before one of them (or the load publisher) finds Redis gone: a few more,
            # bounded, until the worker has said so.
            deadline = time.monotonic() + 5.0
            lines = worker.state_logs()
            while not any("unreachable" in line for line in lines) and time.monotonic() < deadline:
                assert _served_by(worker.chat(threads=1, per_thread=1)) == {"primary": 1}
                lines = worker.state_logs()
            assert sum("unreachable" in line for line in lines) == 1
            assert all("redis://127.0.0.1" in line for line in lines)

            redis.start()
            assert worker.wait_shared()
            # Shared again: a circuit this process opens is one the worker obeys.
            here = _forge(config)
            here.router.breakers.get(primary.base_url).record_failure(
                here.router.breakers.get(primary.base_url).admit() or _never(), trip=True
            )
            calls_before = len(primary.requests)
            assert _served_by(worker.chat(threads=1, per_thread=3)) == {"secondary": 3}
            assert len(primary.requests) == calls_before
            assert any("answers again" in line for line in worker.state_logs())


def test_a_redis_that_stops_answering_costs_a_bounded_wait_and_no_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        run_redis() as redis,
        FaultServer(default=ok("first")) as primary,
        FaultServer(default=ok("second")) as secondary,
    ):
        config = _fleet_config(redis.url, primary, secondary, prefix="paused")
        forge = _forge(config)
        assert forge.chat("Say hi.").route.deployment == "primary"
        caplog.set_level(logging.INFO, logger="forge.state")
        shared = forge.router.shared
        assert shared is not None
        with redis.paused():
            answers = [forge.chat("Say hi.").route.deployment for _ in range(5)]
            # The thread reading Redis when it stopped (a request's, or the load publisher's)
            # gives up at its socket timeout; meanwhile requests keep the view they have.
            deadline = time.monotonic() + 5.0
            while shared.available() and time.monotonic() < deadline:
                answers.append(forge.chat("Say hi.").route.deployment)
            assert not shared.available()
    assert set(answers) == {"primary"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "TimeoutError" in warnings[0].getMessage()


def test_a_key_prefix_keeps_two_configs_on_one_redis_apart(redis_server: RedisServer) -> None:
    from forge_core.state.redis import RedisState

    with FaultServer(default=ok("first")) as primary, FaultServer(default=ok("second")) as second:
        team_a = _forge(_fleet_config(redis_server.url, primary, second, prefix="team-a"))
        team_b = _forge(_fleet_config(redis_server.url, primary, second, prefix="team-b"))
        breaker = team_a.router.breakers.get(primary.base_url)
        breaker.record_failure(breaker.admit() or _never(), trip=True)
        served_b = team_b.chat("Say hi.").route.deployment
        served_a = team_a.chat("Say hi.").route.deployment
    assert (served_a, served_b) == ("secondary", "primary")
    # What another process of each team reads from Redis.
    record_a = RedisState(redis_server.url, key_prefix="team-a").load_breaker(primary.base_url)
    record_b = RedisState(redis_server.url, key_prefix="team-b").load_breaker(primary.base_url)
    assert record_a is not None and record_a.state == "open"
    assert record_b is None


def test_forge_stats_and_health_in_a_fresh_process_show_the_fleets_circuits(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with FaultServer(default=ok("first")) as primary, FaultServer(default=ok("second")) as second:
        config = _fleet_config(redis_server.url, primary, second, prefix="view")
        config["providers"]["endpoints"][1]["rpm"] = 10
        other_process = _forge(config)
        breaker = other_process.router.breakers.get(primary.base_url)
        breaker.record_failure(breaker.admit() or _never(), trip=True)
        assert other_process.chat("Say hi.").route.deployment == "secondary"
        path = write_config(tmp_path / "forge.yaml", config)
        stats = forge_cli("stats", "--json", "--config", str(path), cwd=tmp_path)
        health = forge_cli("health", "--json", "--config", str(path), cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    fleet = json.loads(stats.stdout)
    assert fleet["state"] == {"backend": "redis", "url": redis_server.url, "available": True}
    assert fleet["circuits"][primary.base_url]["state"] == "open"
    assert fleet["budgets"]["secondary"]["requests_in_window"] == 1
    assert fleet["budgets"]["secondary"]["requests_left"] == 9
    assert fleet["deployments"]["primary"]["fleet_in_flight"] == 0
    assert health.returncode == 0, health.stderr
    rows = {row["deployment"]: row for row in json.loads(health.stdout)["providers"]}
    assert (rows["primary"]["circuit"], rows["secondary"]["circuit"]) == ("open", "closed")
    assert json.loads(health.stdout)["state"]["available"] is True


def _never() -> Any:
    raise AssertionError("the circuit refused a ticket")
