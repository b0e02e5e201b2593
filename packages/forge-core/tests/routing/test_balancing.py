"""Balancing among the deployments that serve the same model (#15 item 5, ``routing.balance``).

``warm-first`` (the default) sends a request to a host with the model loaded (Ollama's
``/api/ps``) before one where it would load, then to the host with the fewest requests in
flight, then to the one with the lowest recent latency; ``ordered`` keeps the config order.
The model order stays first. Every host is a real socket server on 127.0.0.1 answering
Ollama's documented ``/api/tags`` and ``/api/ps``.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import Fault, FaultServer, held, ok, ollama_hosts_on, slow, stall_mid_stream
from forge_core import ChatRequest, Forge, ForgeConfig


def _two_hosts(a: FaultServer, b: FaultServer, **routing: Any) -> ForgeConfig:
    return ForgeConfig.model_validate(ollama_hosts_on(a, b, **routing))


@pytest.mark.parametrize(
    ("balance", "served_by"), [("warm-first", "host-b"), ("ordered", "host-a")]
)
def test_warm_first_goes_to_the_host_with_the_model_loaded_and_ordered_keeps_the_config_order(
    balance: str, served_by: str
) -> None:
    with (
        FaultServer(default=ok("from a"), loaded=[]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
    ):
        forge = Forge(_two_hosts(host_a, host_b, balance=balance), clock=FakeClock())
        answers = [forge.chat("hi") for _ in range(3)]
    assert [a.route.deployment for a in answers] == [served_by] * 3
    assert [len(host_a.requests), len(host_b.requests)] == (
        [0, 3] if served_by == "host-b" else [3, 0]
    )


def test_the_plan_says_where_the_model_is_loaded_and_a_bare_tag_matches_latest() -> None:
    with (
        FaultServer(loaded=["m:latest"]) as host_a,
        FaultServer(loaded=[]) as host_b,
    ):
        forge = Forge(_two_hosts(host_a, host_b), clock=FakeClock())
        candidates, _ = forge.router.plan(ChatRequest(messages=[]))
    assert [(c.deployment, c.loaded) for c in candidates] == [("host-a", True), ("host-b", False)]


def test_a_request_in_flight_on_one_host_sends_the_next_concurrent_one_to_the_other() -> None:
    release = threading.Event()
    with (
        FaultServer([held(release, "from a")], default=ok("from a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
        ThreadPoolExecutor(1) as pool,
    ):
        forge = Forge(_two_hosts(host_a, host_b), clock=FakeClock())
        first = pool.submit(forge.chat, "one")
        assert host_a.wait_for_requests(1)
        during = forge.stats()["deployments"]["host-a"]["in_flight"]
        second = forge.chat("two")
        release.set()
        first_answer = first.result(timeout=10)
        after = forge.stats()["deployments"]
    assert first_answer.route.deployment == "host-a"
    assert second.route.deployment == "host-b"
    assert during == 1
    assert (after["host-a"]["in_flight"], after["host-b"]["in_flight"]) == (0, 0)


def test_a_stream_counts_as_in_flight_until_the_caller_closes_it() -> None:
    with (
        FaultServer([stall_mid_stream("streaming ")], default=ok("a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
    ):
        forge = Forge(_two_hosts(host_a, host_b), clock=FakeClock())
        stream = forge.stream("tell me")
        first = next(stream)
        during = forge.stats()["deployments"]["host-a"]["in_flight"]
        concurrent = forge.chat("meanwhile")
        stream.close()
        after = forge.stats()["deployments"]["host-a"]["in_flight"]
    assert first.content == "streaming "
    assert during == 1
    assert concurrent.route.deployment == "host-b"
    assert after == 0


def test_the_host_that_answered_faster_is_preferred_when_loaded_and_in_flight_tie() -> None:
    clock = FakeClock()

    def slow_first(n: int) -> Fault:
        if n == 0:
            clock.advance(5.0)  # the first answer takes 5 s longer, on the router's clock
        return ok("from a")

    with (
        FaultServer(slow_first, loaded=["m"]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
    ):
        forge = Forge(_two_hosts(host_a, host_b), clock=clock)
        served = [forge.chat(f"request {i}").route.deployment for i in range(4)]
        latency = {
            name: load["latency_ms"]["m"] for name, load in forge.stats()["deployments"].items()
        }
    # host-a first (config order), host-b next (not measured yet), then the faster one.
    assert served == ["host-a", "host-b", "host-b", "host-b"]
    assert latency["host-a"] >= 5000 > latency["host-b"]


def test_ordered_balance_ignores_load_and_latency() -> None:
    release = threading.Event()
    with (
        FaultServer([held(release, "from a")], default=ok("from a"), loaded=[]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
        ThreadPoolExecutor(1) as pool,
    ):
        forge = Forge(_two_hosts(host_a, host_b, balance="ordered"), clock=FakeClock())
        first = pool.submit(forge.chat, "one")
        assert host_a.wait_for_requests(1)
        candidates, _ = forge.router.plan(ChatRequest(messages=[]))
        release.set()
        first.result(timeout=10)
    assert [c.deployment for c in candidates] == ["host-a", "host-b"]


def test_the_model_order_comes_before_balancing() -> None:
    with (
        FaultServer(default=ok("big on a"), models=["big:70b", "small:1b"], loaded=[]) as host_a,
        FaultServer(default=ok("small on b"), models=["small:1b"], loaded=["small:1b"]) as host_b,
    ):
        config = ForgeConfig.model_validate(
            {
                "model_preferences": {"local_first": False},
                "providers": {
                    "local": {
                        "ollama": {
                            "hosts": [
                                {"name": "host-a", "base_url": host_a.root_url},
                                {"name": "host-b", "base_url": host_b.root_url},
                            ],
                            "preferred_models": ["big:70b", "small:1b"],
                        }
                    },
                    "fallback": {"order": ["ollama"]},
                },
            }
        )
        forge = Forge(config, clock=FakeClock())
        forge.router.discovery.where_available()  # each host's pulled models (/api/tags)
        candidates, _ = forge.router.plan(ChatRequest(messages=[]))
        answer = forge.chat("hi")
    # The preferred model first, though only a host where it must load has it; then the
    # next model, on the host where it is loaded first.
    assert [c.key for c in candidates] == ["host-a:big:70b", "host-b:small:1b", "host-a:small:1b"]
    assert answer.content == "big on a"


def test_hosts_listed_as_separate_order_entries_keep_their_order() -> None:
    with (
        FaultServer(default=ok("from a"), loaded=[]) as host_a,
        FaultServer(default=ok("from b"), loaded=["m"]) as host_b,
    ):
        config = _two_hosts(host_a, host_b)
        order = config.providers.fallback.model_copy(update={"order": ["host-a", "host-b"]})
        providers = config.providers.model_copy(update={"fallback": order})
        forge = Forge(config.model_copy(update={"providers": providers}), clock=FakeClock())
        candidates, _ = forge.router.plan(ChatRequest(messages=[]))
    assert [c.deployment for c in candidates] == ["host-a", "host-b"]


def test_a_host_without_api_ps_is_unknown_not_failed_and_equal_hosts_take_turns() -> None:
    with (
        FaultServer(default=ok("from a")) as host_a,  # /api/ps answers 404
        FaultServer(default=ok("from b")) as host_b,
    ):
        forge = Forge(_two_hosts(host_a, host_b), clock=FakeClock())
        candidates, _ = forge.router.plan(ChatRequest(messages=[]))
        answer = forge.chat("hi")
        circuits = forge.stats()["circuits"]
    assert [(c.deployment, c.loaded) for c in candidates] == [("host-a", None), ("host-b", None)]
    # Nothing tells the hosts apart: the next request starts with the other one.
    assert answer.route.deployment == "host-b"
    assert {circuit["state"] for circuit in circuits.values()} == {"closed"}


def test_two_equal_hosts_under_100_concurrent_requests_share_them_within_one_and_a_half() -> None:
    with (
        FaultServer(default=slow(0.02, "from a"), loaded=["m"]) as host_a,
        FaultServer(default=slow(0.02, "from b"), loaded=["m"]) as host_b,
        ThreadPoolExecutor(100) as pool,
    ):
        forge = Forge(_two_hosts(host_a, host_b))
        served = list(pool.map(lambda _: forge.chat("hi").route.deployment, range(100)))
        calls = sorted([len(host_a.requests), len(host_b.requests)])
    assert sorted(served.count(host) for host in ("host-a", "host-b")) == calls
    assert sum(calls) == 100
    assert calls[1] <= 1.5 * calls[0]


def test_a_host_killed_during_a_run_loses_no_request_and_its_circuit_opens() -> None:
    with (
        FaultServer(default=slow(0.01, "from a"), loaded=["m"]) as host_a,
        FaultServer(default=slow(0.01, "from b"), loaded=["m"]) as host_b,
        ThreadPoolExecutor(4) as pool,
    ):
        forge = Forge(_two_hosts(host_a, host_b))
        before = list(pool.map(lambda _: forge.chat("hi").route.deployment, range(20)))
        host_a.stop()
        after = list(pool.map(lambda _: forge.chat("hi").route, range(40)))
        circuit = forge.stats()["circuits"][host_a.root_url]["state"]
    assert set(before) == {"host-a", "host-b"}
    assert all(route.deployment == "host-b" for route in after)
    assert circuit == "open"
    # Once open, host-a is skipped without a call: a drop, not an attempt.
    assert any(drop.deployment == "host-a" for drop in after[-1].drops)


class _HeldListing(FaultServer):
    """A host whose ``/api/ps`` answers only once ``release`` is set (at most 5 s)."""

    def __init__(self, release: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.release = release

    def _get(self, path: str) -> tuple[int, Any]:
        if path == "/api/ps":
            self.release.wait(5.0)
        return super()._get(path)


def test_an_async_request_waits_for_api_ps_without_blocking_the_event_loop() -> None:
    release = threading.Event()

    async def run(forge: Forge) -> tuple[bool, str]:
        request = asyncio.create_task(forge.achat("hi"))
        # Back here at the request's first wait. Planning waits for the listings in a thread:
        # this runs while it waits, and frees them. A plan that blocked the loop would have
        # given up on them (at its own bound) before this ran.
        await asyncio.sleep(0)
        planning = not request.done()
        release.set()
        answer = await request
        return planning, str(answer.route.deployment)

    with (
        _HeldListing(release, default=ok("from a"), loaded=[]) as host_a,
        _HeldListing(release, default=ok("from b"), loaded=["m"]) as host_b,
    ):
        forge = Forge(_two_hosts(host_a, host_b))
        planning, served = asyncio.run(run(forge))
    # The listings came in time for the plan: the warm host serves (with none known, the
    # first request's turn goes to host-a).
    assert planning
    assert served == "host-b"
