"""The deployments benchmark (issue #15's performance rows): planning over many deployments, a
500 from the primary, and warm-first balancing between two Ollama hosts.

- **Planning**: what a request plans before its first attempt (no network call: the first
  candidate and whether another follows, `Planner.lazy`) with 1 deployment vs 50, as
  OpenAI-compatible deployments (``providers.cloud.openai`` plus 49 ``providers.endpoints``) in
  one order entry (``openai``: all of them, balanced) and in 50 entries (one each, no
  balancing), and as Ollama ``hosts:`` with ``routing.balance: ordered`` (and
  ``load_timeout_seconds: 0``, so no ``/api/ps``) and ``warm-first`` (``/api/ps`` cached 2 s,
  refetched in the background when expired: the rows measure the steady state, and a separate
  pair forces an expired listing before every plan). Plus a full ``Forge.chat`` against the
  live server with 1 vs 50 endpoints (all 50 live: distinct base URLs on the live port).
  Target: at most 50 µs more per request than with one deployment (p50 difference).
- **500 from the primary**: time to the fallback's answer, ``ForgeChat.invoke`` vs LangChain's
  ``ChatOpenAI(primary).with_fallbacks([ChatOpenAI(live)])`` with SDK retries off (target
  ≤ 1.5x), both against the benchmark server's ``failing`` port.
- **Warm-first share**: two fake Ollama hosts (`benchmarks.fake_ollama`), the model loaded only
  on the second listed; the share of requests the warm host answered (target 100%).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from benchmarks.fake_ollama import FakeOllama, fake_ollama_hosts
from benchmarks.report import Row, compare, row
from benchmarks.server import MODEL, Loopback
from benchmarks.suites import (
    MAX_TOKENS,
    PROMPT,
    Sizes,
    _check,
    _forge_chat,
    _ms,
    _route_note,
    _sample,
    _timed_rounds,
    _with_fallbacks,
    forge_config,
)

BENCHMARK = "deployments"
#: How many deployments the "many" side of the planning rows has.
MANY = 50
#: The planning target: p50 difference from the one-deployment row, microseconds.
PLAN_BUDGET_US = 50.0
#: The prefix-affinity target (#32): what choosing by prefix adds to a request with ``MANY``
#: deployments and ``HELD`` prefixes remembered, microseconds (learning the answer's prefixes,
#: after it, is reported beside it).
AFFINITY_BUDGET_US = 20.0
#: How many prefixes (message sequences) the affinity row's index holds before it is timed.
HELD = 10_000


def deployments(server: Loopback, sizes: Sizes) -> list[Row]:
    """Every row of the deployments benchmark, against ``server`` and two fake Ollama hosts."""
    with fake_ollama_hosts() as ollama:
        rows = planning(server, ollama, sizes)
        rows += forge_chat_many(server, sizes)
        rows += server_error(server, sizes)
        rows += warm_first(ollama, sizes)
    return rows


# -- configs ------------------------------------------------------------------------------------


def _openai_config(base_urls: list[str], *, one_entry: bool) -> Any:
    """``providers.cloud.openai`` at the first URL and a named endpoint at each other one, in
    one order entry (the kind ``openai``: all of them, balanced) or one entry each."""
    from forge_core import ForgeConfig

    endpoints = [
        {"name": f"ep{i:02}", "kind": "openai", "base_url": url, "default_model": MODEL}
        for i, url in enumerate(base_urls[1:], start=1)
    ]
    # ``openai`` alone is the kind: every deployment of it. ``openai:<model>`` is the cloud
    # section's own deployment alone.
    order = ["openai"] if one_entry else [f"openai:{MODEL}", *(e["name"] for e in endpoints)]
    return ForgeConfig.model_validate(
        {
            "providers": {
                "cloud": {
                    "openai": {
                        "base_url": base_urls[0],
                        "api_key_env": None,
                        "default_model": MODEL,
                    }
                },
                "endpoints": endpoints,
                "fallback": {"enabled": True, "order": order},
            },
            # The named endpoints on 127.0.0.1 count as local and the cloud section not:
            # local_first would split the entry in two.
            "model_preferences": {"local_first": False},
        }
    )


def _ollama_config(hosts: list[tuple[str, str]], balance: str) -> Any:
    """One Ollama host per (name, URL) (``hosts:``), the order entry ``ollama`` (all of them)."""
    from forge_core import ForgeConfig

    ollama: dict[str, Any] = {
        "hosts": [{"name": name, "base_url": url} for name, url in hosts],
        "preferred_models": [MODEL],
    }
    if balance == "ordered":
        ollama["load_timeout_seconds"] = 0  # with ordered balancing: no /api/ps at all
    return ForgeConfig.model_validate(
        {
            "providers": {
                "local": {"ollama": ollama},
                "fallback": {"enabled": True, "order": ["ollama"]},
            },
            "routing": {"balance": balance},
        }
    )


def _endpoint_urls(server: Loopback, n: int) -> list[str]:
    """``n`` distinct base URLs that all reach the live server (path prefixes on its port)."""
    root = server.live.removesuffix("/v1")
    return [server.live] + [f"{root}/d{i:02}/v1" for i in range(1, n)]


def _hosts(ollama: FakeOllama, n: int) -> list[tuple[str, str]]:
    """``n`` distinct Ollama hosts by name: ``h00`` the warm one, then the cold one under
    path prefixes."""
    return [("h00", ollama.warm)] + [(f"h{i:02}", f"{ollama.cold}/h{i:02}") for i in range(1, n)]


class _JumpingClock:
    """The system clock, moved forward on demand: ``expire()`` makes every cached ``/api/ps``
    answer stale (it is trusted 2 s on the router's clock), with no waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def expire(self) -> None:
        from forge_core.routing.load import RESIDENT_TTL_SECONDS

        self.offset += RESIDENT_TTL_SECONDS + 0.1

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# -- 1. planning --------------------------------------------------------------------------------


def _planner(forge: Any, first: str, count: int) -> tuple[Callable[[], Any], str]:
    """One ``plan`` of the benchmark request, and a note on the first plans.

    With Ollama hosts that are asked for ``/api/ps``, plans until every host's listing is
    known (the first plan waits at most 0.5 s for them; the rest arrive in the background) and
    notes how long that took. Then checks that it plans ``count`` candidates with ``first``
    first, so a wrong config cannot look fast.
    """
    from forge_core import ChatRequest

    request = ChatRequest(messages=[{"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS)
    plan = forge.router.plan
    note = ""
    # The deployments the planner asks for /api/ps (none known: nothing to wait for).
    listers = getattr(forge.router.planner, "_listers", {})

    def unknown(candidates: list[Any]) -> int:
        return sum(c.deployment in listers and c.loaded is None for c in candidates)

    start = time.perf_counter()
    candidates, _ = plan(request)
    first_ms = _ms(start)
    if any(c.deployment in listers for c in candidates):
        known = count - unknown(candidates)
        while unknown(candidates) and time.perf_counter() - start < 30:
            time.sleep(0.02)
            candidates, _ = plan(request)
        note = (
            f"first plan {first_ms:,.0f} ms with {known}/{count} /api/ps known, all known "
            f"after {time.perf_counter() - start:.1f} s"
        )
    candidates, drops = plan(request)
    # A warm host must come first; equal hosts take turns, so then ``first`` is only among them.
    warm = any(c.loaded for c in candidates)
    planned_first = candidates[0].deployment if candidates else None
    if (
        len(candidates) != count
        or drops
        or (warm and planned_first != first)
        or first not in {c.deployment for c in candidates}
    ):
        raise AssertionError(
            f"planned {[c.deployment for c in candidates]} (dropped {drops}), "
            f"expected {count} with {first} (first when it is the warm one)"
        )
    return _per_request(forge, request), note


def _per_request(forge: Any, request: Any) -> Callable[[], Any]:
    """What a routed request plans before its first attempt (`forge_core.routing.route.Route`): the
    first candidate, and whether another follows (its retry policy asks). A forge without
    lazy plans (``Planner.lazy``) plans everything, as its requests did."""
    planner = forge.router.planner
    if not hasattr(planner, "lazy"):
        plan = forge.router.plan
        return lambda: plan(request)

    def plan_request() -> Any:
        planned = planner.lazy(request)
        planned.first()
        return planned.has_after(0)

    return plan_request


def _difference(
    rows: list[Row],
    subject: str,
    peer: str,
    label: str = "1 deployment",
    budget: float | None = PLAN_BUDGET_US,
) -> None:
    """Set ``subject``'s ratio to ``peer`` and the ``≤ +budget µs`` target on the p50
    difference (rows in µs or ms); with no ``budget``, the difference only."""
    compare(rows, subject, peer)
    mine = next(r for r in rows if r.subject == subject)
    theirs = next(r for r in rows if r.subject == peer)
    scale = 1000.0 if mine.unit.startswith("ms") else 1.0
    delta = (mine.p50 - theirs.p50) * scale
    if budget is not None:
        mine.target, mine.met = f"≤ +{budget:g} µs", delta <= budget
    mine.note = f"{delta:+.1f} µs vs {label}" + (f"; {mine.note}" if mine.note else "")


def planning(server: Loopback, ollama: FakeOllama, sizes: Sizes) -> list[Row]:
    """µs per ``Router.plan`` with 1 and with 50 deployments, in each shape."""
    from forge_core import Forge

    one, many = "1 deployment", f"{MANY} deployments"
    urls, hosts = _endpoint_urls(server, MANY), _hosts(ollama, MANY)
    planners = {
        f"plan: endpoints, {one}": _planner(
            Forge(_openai_config(urls[:1], one_entry=True)), "openai", 1
        ),
        f"plan: endpoints, {many}, one order entry": _planner(
            Forge(_openai_config(urls, one_entry=True)), "openai", MANY
        ),
        f"plan: endpoints, {many}, one entry each": _planner(
            Forge(_openai_config(urls, one_entry=False)), "openai", MANY
        ),
        f"plan: ollama hosts, ordered, {one}": _planner(
            Forge(_ollama_config(hosts[:1], "ordered")), "h00", 1
        ),
        f"plan: ollama hosts, ordered, {many}": _planner(
            Forge(_ollama_config(hosts, "ordered")), "h00", MANY
        ),
        f"plan: ollama hosts, warm-first, {one}": _planner(
            Forge(_ollama_config(hosts[:1], "warm-first")), "h00", 1
        ),
        # h00, the warm host, is listed last: planned first only because /api/ps says it is
        # loaded.
        f"plan: ollama hosts, warm-first, {many}": _planner(
            Forge(_ollama_config(hosts[::-1], "warm-first")), "h00", MANY
        ),
    }
    subjects = {name: call for name, (call, _) in planners.items()}
    off, prefix, learning = (
        f"choose: endpoints, {many}, one order entry, a conversation's turn, affinity off",
        f"choose: endpoints, {many}, one order entry, a conversation's turn, "
        f"affinity prefix, {HELD:,} prefixes held",
        f"choose and learn: endpoints, {many}, one order entry, a conversation's turn, "
        f"affinity prefix, {HELD:,} prefixes held",
    )
    subjects[off], subjects[prefix], subjects[learning] = _affinity_choice(
        Forge(_openai_config(urls, one_entry=True))
    )
    # Plans are microseconds: ten times the calls of the HTTP subjects for the same precision.
    calls = sizes.calls * 10
    samples = _timed_rounds(subjects, calls, sizes.warmup * 10, sizes.rounds)
    rows = [
        row(
            BENCHMARK,
            name,
            "µs",
            [ms * 1000 for ms in values],
            note="; ".join(
                part for part in (_tail(values), planners.get(name, (None, ""))[1]) if part
            ),
        )
        for name, values in samples.items()
    ]
    _difference(rows, f"plan: endpoints, {many}, one order entry", f"plan: endpoints, {one}")
    _difference(rows, f"plan: endpoints, {many}, one entry each", f"plan: endpoints, {one}")
    _difference(rows, prefix, off, "affinity off", AFFINITY_BUDGET_US)
    # Learning runs once the answer is in, off the path to the first token: reported, the
    # issue's budget is the choice's.
    _difference(rows, learning, off, "affinity off", None)
    _difference(rows, f"plan: ollama hosts, ordered, {many}", f"plan: ollama hosts, ordered, {one}")
    _difference(
        rows, f"plan: ollama hosts, warm-first, {many}", f"plan: ollama hosts, warm-first, {one}"
    )
    rows += _expired_listing(hosts, sizes)
    return rows


def _affinity_choice(
    forge: Any,
) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]:
    """What a request plans before its first attempt without prefix affinity, with it
    (`AffinityIndex.begin` and the balanced choice), and with it and what `Route` does after
    the answer (`AffinityIndex.served`): the next turns of 1,200 conversations in turn (10
    system prompts, 10 messages each so far), their earlier turns spread over the
    deployments, ``HELD`` prefixes in all."""
    from forge_core import ChatRequest, Message

    planner, index = forge.router.planner, forge.router.affinity
    systems = [f"You are agent {a}. Follow the rules. " * 30 for a in range(10)]
    turns: list[Any] = []
    for c in range(1_200):
        messages = [Message(role="system", content=systems[c % 10])]
        for t in range(9):
            role = "user" if t % 2 == 0 else "assistant"
            messages.append(Message(role=role, content=f"conversation {c}, message {t}"))
        earlier = ChatRequest(messages=messages)
        first = planner.lazy(earlier).first()
        assert first is not None
        index.served(first.endpoint, first.model, index.begin(earlier).digests)
        turns.append(ChatRequest(messages=[*messages, Message(role="user", content="And?")]))
    held = sum(
        index.size(endpoint) for endpoint in {c.endpoint for c in forge.router.plan(turns[0])[0]}
    )
    if held < HELD:
        raise AssertionError(f"the index holds {held} prefixes, expected {HELD}")
    at = itertools.cycle(turns)

    def without() -> Any:
        planned = planner.lazy(next(at))
        planned.first()
        return planned.has_after(0)

    def choose() -> Any:
        request = next(at)
        planned = planner.lazy(request, affinity=index.begin(request))
        first = planned.first()
        planned.has_after(0)
        return first

    def choose_and_learn() -> Any:
        request = next(at)
        affinity = index.begin(request)
        planned = planner.lazy(request, affinity=affinity)
        first = planned.first()
        planned.has_after(0)
        endpoint, model = first.endpoint, first.model
        index.served(endpoint, model, affinity.digests, affinity.known(endpoint, model))
        return first

    return without, choose, choose_and_learn


def _tail(values_ms: list[float]) -> str:
    """The slowest plan: a warm-first one that waited for an expired ``/api/ps`` shows here."""
    return f"max {max(values_ms) * 1000:,.0f} µs"


def _expired_listing(hosts: list[tuple[str, str]], sizes: Sizes) -> list[Row]:
    """µs per plan when every host's ``/api/ps`` answer has just expired (once per 2 s per
    router in use): the refetch, one background thread per host, and the bounded wait."""
    from forge_core import Forge

    subjects: dict[str, tuple[_JumpingClock, Callable[[], Any]]] = {}
    for count in (1, MANY):
        clock = _JumpingClock()
        ordered = hosts[:count][::-1]
        forge = Forge(_ollama_config(ordered, "warm-first"), clock=clock)
        name = f"plan: ollama hosts, warm-first, {count} deployment{'s' * (count > 1)}, " + (
            "/api/ps expired"
        )
        subjects[name] = (clock, _planner(forge, "h00", count)[0])
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(max(3, sizes.calls // 10)):
        for name, (clock, plan) in subjects.items():
            clock.expire()
            start = time.perf_counter()
            plan()
            samples[name].append((time.perf_counter() - start) * 1e6)
    rows = [row(BENCHMARK, name, "µs", values) for name, values in samples.items()]
    many, one = rows[1], rows[0]
    compare(rows, many.subject, one.subject)
    many.note = (
        f"{many.p50 - one.p50:+,.0f} µs vs 1 deployment, once per 2 s per router (the listing's "
        f"TTL), not per request; {MANY} /api/ps GETs in {MANY} threads"
    )
    return rows


def forge_chat_many(server: Loopback, sizes: Sizes) -> list[Row]:
    """``Forge.chat`` against the live server with 1 deployment vs 50 (one order entry, so
    balancing picks among all 50; each a distinct base URL on the live port).

    Balanced requests take turns over the 50, so each goes out on another client's keep-alive
    connection: a cost of spreading load that any client pays, not forge's. The peer pair
    measures it in the same run (raw ``httpx.Client.post`` on 1 client vs 50 clients in turn),
    and the target is on forge's own share: the 50-vs-1 difference less the peers' one.
    """
    import httpx
    from forge_core import Forge

    urls = _endpoint_urls(server, MANY)
    served: dict[str, set[str]] = {}

    def caller(forge: Forge, name: str) -> Callable[[], Any]:
        seen = served.setdefault(name, set())

        def call() -> Any:
            answer = forge.chat(PROMPT, max_tokens=MAX_TOKENS)
            seen.add(str(answer.route.deployment))
            return answer.content

        return call

    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    }

    def posts_in_turn(clients: list[httpx.Client]) -> Callable[[], Any]:
        turns = itertools.cycle(clients)

        def call() -> Any:
            response = next(turns).post("/chat/completions", json=body)
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

        return call

    one, many = "Forge.chat, 1 deployment", f"Forge.chat, {MANY} deployments"
    raw_one, raw_many = "raw httpx, 1 client", f"raw httpx, {MANY} clients in turn"
    clients = [httpx.Client(base_url=url) for url in urls]
    subjects = {
        one: caller(Forge(_openai_config(urls[:1], one_entry=True)), one),
        many: caller(Forge(_openai_config(urls, one_entry=True)), many),
        raw_one: posts_in_turn(clients[:1]),
        raw_many: posts_in_turn(clients),
    }
    try:
        for name, call in subjects.items():
            _check(name, call())
        # Warm-up covers every deployment (balancing tries the unmeasured ones first).
        samples = _timed_rounds(subjects, sizes.calls, max(sizes.warmup, MANY), sizes.rounds)
    finally:
        for client in clients:
            client.close()
    rows = [row(BENCHMARK, name, "ms/call", values) for name, values in samples.items()]
    by_name = {r.subject: r for r in rows}
    compare(rows, many, one)
    compare(rows, raw_many, raw_one)
    mine, theirs = by_name[many], by_name[raw_many]
    spread = (theirs.p50 - by_name[raw_one].p50) * 1000.0
    own = (mine.p50 - by_name[one].p50) * 1000.0 - spread
    mine.target, mine.met = f"≤ +{PLAN_BUDGET_US:g} µs", own <= PLAN_BUDGET_US
    mine.note = (
        f"{own:+.1f} µs vs 1 deployment beyond the {spread:+.1f} µs that 50 connections in "
        f"turn cost raw httpx; answered by {len(served[many])} of the {MANY} (balanced: one "
        f"order entry)"
    )
    return rows


# -- 2. a 500 from the primary ------------------------------------------------------------------


def server_error(server: Loopback, sizes: Sizes) -> list[Row]:
    """Time to the fallback's answer when the primary answers 500: ``ForgeChat.invoke`` (its
    circuit kept closed, so the primary is tried on every call; and with the default breaker)
    vs ``with_fallbacks`` with SDK retries off (target ≤ 1.5x) and at the SDK default."""
    closed = _forge_chat(forge_config(server.failing, server.live, breaker_failure_threshold=10**9))
    default = _forge_chat(forge_config(server.failing, server.live))
    lc_off = _with_fallbacks(server.failing, server.live, max_retries=0)
    subjects: dict[str, Callable[[], Any]] = {
        "500: forge ForgeChat, circuit closed": lambda: closed.invoke(PROMPT).content,
        "500: forge ForgeChat, default breaker": lambda: default.invoke(PROMPT).content,
        "500: with_fallbacks, SDK retries off": lc_off,
    }
    for name, call in subjects.items():
        _check(name, call())
    samples = _timed_rounds(subjects, max(1, sizes.calls // 3), sizes.warmup, sizes.rounds)
    notes = {
        "500: forge ForgeChat, circuit closed": _route_note(closed.invoke(PROMPT)),
        "500: forge ForgeChat, default breaker": _route_note(default.invoke(PROMPT)),
    }
    rows = [
        row(BENCHMARK, name, "ms/call", values, note=notes.get(name, ""))
        for name, values in samples.items()
    ]
    if sizes.slow_peers:
        rows.append(
            row(
                BENCHMARK,
                "500: with_fallbacks, SDK default retries",
                "ms/call",
                _sample(_with_fallbacks(server.failing, server.live), sizes.slow_calls),
                note="the openai SDK retries a 500 twice with backoff",
            )
        )
    peer = "500: with_fallbacks, SDK retries off"
    compare(rows, "500: forge ForgeChat, circuit closed", peer, limit=1.5)
    compare(rows, "500: forge ForgeChat, default breaker", peer)
    return rows


# -- 3. warm-first share ------------------------------------------------------------------------


def warm_first(ollama: FakeOllama, sizes: Sizes) -> list[Row]:
    """The share of requests the warm host answered: two hosts, the model loaded (``/api/ps``)
    only on the second listed, ``routing.balance: warm-first``; sequential and concurrent."""
    from forge_core import Forge, ForgeConfig

    def config(balance: str) -> ForgeConfig:
        return ForgeConfig.model_validate(
            {
                "providers": {
                    "local": {
                        "ollama": {
                            "hosts": [
                                {"name": "cold-host", "base_url": ollama.cold},
                                {"name": "warm-host", "base_url": ollama.warm},
                            ],
                            "preferred_models": [MODEL],
                        }
                    },
                    "fallback": {"enabled": True, "order": ["ollama"]},
                },
                "routing": {"balance": balance},
            }
        )

    def served(forge: Forge, n: int) -> list[str]:
        hosts = []
        for _ in range(n):
            answer = forge.chat(PROMPT, max_tokens=MAX_TOKENS)
            _check("warm-first", answer.content)
            hosts.append(str(answer.route.deployment))
        return hosts

    async def burst(forge: Forge, n: int) -> list[str]:
        answers = await asyncio.gather(
            *(forge.achat(PROMPT, max_tokens=MAX_TOKENS) for _ in range(n))
        )
        for answer in answers:
            _check("warm-first", answer.content)
        return [str(answer.route.deployment) for answer in answers]

    n = sizes.calls
    concurrent = max(2, sizes.concurrency // 5)
    sequential = served(Forge(config("warm-first")), n)
    together = asyncio.run(burst(Forge(config("warm-first")), concurrent))
    ordered = served(Forge(config("ordered")), max(2, n // 10))
    control = (
        f"with balance: ordered, {ordered.count('warm-host')}/{len(ordered)} "
        "(config order: the cold host first)"
    )
    rows = []
    for label, hosts in ((f"{n} sequential", sequential), (f"{concurrent} concurrent", together)):
        share = 100.0 * hosts.count("warm-host") / len(hosts)
        rows.append(
            Row(
                BENCHMARK,
                f"warm-first: share to the warm host, {label}",
                "%",
                share,
                share,
                len(hosts),
                target="100%",
                met=share == 100.0,
                note=f"Forge.{'chat' if 'sequential' in label else 'achat'}; {control}",
            )
        )
    return rows
