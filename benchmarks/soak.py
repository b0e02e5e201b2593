"""The soak benchmark: what a process holds after many requests (issue #30).

Each subject runs in a fresh child process of its own (``python -m benchmarks.soak``), so its
descriptors and resident memory are its alone: ``ForgeChat`` and, beside it, ``ChatOpenAI`` on
the same loopback server (its own server process, streaming without the 1 ms between chunks of
the other benchmarks). Both send the same mix, in cycles of ten requests:

- 3 ``invoke`` (sync), 2 ``stream`` (sync, read to the end);
- 2 ``ainvoke`` on one event loop that lives for the whole run;
- 2 ``ainvoke`` each in an ``asyncio.run`` of its own (a fresh loop per request);
- 1 ``invoke`` with a failing primary (HTTP 500) before the live server: forge's ``openai`` then
  ``openrouter`` (its breaker opens and then skips the primary, probing it after each
  cooldown); ``ChatOpenAI(failing, max_retries=0).with_fallbacks([ChatOpenAI(live)])``.

After a warm-up (1% of the cycles, at least 5) the child counts its open descriptors
(``/proc/self/fd``) and resident set (after ``gc.collect()``) as the baseline, then again at ten
checkpoints; the last one against the baseline is the growth. Target for forge: +0 descriptors
and at most +5 MB.

``ChatOpenAI`` sends `PEER_REQUESTS` at most: across loops each of its requests pays ~0.45 s,
because its one async client first tries a connection of the previous, closed loop ("Event
loop is closed") and openai retries after its backoff (with ``max_retries=0`` the request
fails), so a fifth of 100k would take hours.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.report import Row, compare, row
from benchmarks.server import Loopback, loopback_server

ROOT = Path(__file__).resolve().parents[1]
#: Requests of one cycle of the mix (module docstring).
CYCLE = 10
#: Warm-up cycles before the baseline (imports, first connections, the breaker opened):
#: this share of the run, at least `MIN_WARMUP_CYCLES`.
WARMUP_SHARE = 0.01
MIN_WARMUP_CYCLES = 5
#: Requests ChatOpenAI sends at most (module docstring).
PEER_REQUESTS = 1_000
CHECKPOINTS = 10
FD_TARGET = 0
RSS_TARGET_MB = 5.0
SUBJECTS = {"forge": "forge ForgeChat", "peer": "ChatOpenAI"}


def soak(server: Loopback, requests: int) -> list[Row]:
    """Descriptors and RSS of forge over ``requests`` mixed requests, and of ChatOpenAI over
    at most `PEER_REQUESTS` (both rounded up to whole cycles), each from a child process of
    its own; ``server`` is unused (the soak starts its own, without the streaming delay)."""
    del server
    sent = {"forge": _whole_cycles(requests), "peer": _whole_cycles(min(requests, PEER_REQUESTS))}
    results: dict[str, list[dict[str, float]]] = {}
    with loopback_server(chunk_delay_ms=0.0) as fast:
        for subject in SUBJECTS:
            results[subject] = _child(subject, fast, sent[subject])
    rows: list[Row] = []
    growth: dict[str, tuple[float, float]] = {}
    names: dict[str, tuple[str, str]] = {}
    for subject, name in SUBJECTS.items():
        label = f"{name}, {sent[subject]:,} mixed requests"
        names[subject] = (f"{label}: open descriptors", f"{label}: RSS")
        points = results[subject]
        base, last = points[0], points[-1]
        fds, rss = last["fds"] - base["fds"], (last["rss"] - base["rss"]) / 2**20
        growth[subject] = (fds, rss)
        rows.append(
            row(
                "soak",
                names[subject][0],
                "fds",
                [p["fds"] for p in points[1:]],
                note=f"{fds:+.0f} since warm-up",
                extra={"growth": fds, "baseline": base["fds"]},
            )
        )
        rows.append(
            row(
                "soak",
                names[subject][1],
                "MB",
                [round(p["rss"] / 2**20, 1) for p in points[1:]],
                note=f"{rss:+.1f} MB since warm-up",
                extra={"growth_mb": rss, "baseline_mb": base["rss"] / 2**20},
            )
        )
    (forge_fds, forge_rss), (peer_fds, peer_rss) = names["forge"], names["peer"]
    compare(rows, forge_fds, peer_fds)
    compare(rows, forge_rss, peer_rss)
    by_name = {r.subject: r for r in rows}
    by_name[forge_fds].target = f"+{FD_TARGET} fds"
    by_name[forge_fds].met = growth["forge"][0] <= FD_TARGET
    by_name[forge_rss].target = f"≤ +{RSS_TARGET_MB:g} MB"
    by_name[forge_rss].met = growth["forge"][1] <= RSS_TARGET_MB
    return rows


def _whole_cycles(requests: int) -> int:
    """``requests`` rounded up to whole cycles of the mix."""
    return -(-requests // CYCLE) * CYCLE


def _child(subject: str, server: Loopback, requests: int) -> list[dict[str, float]]:
    """Run one subject in a fresh interpreter; its checkpoints (baseline first)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.soak",
            subject,
            "--live",
            server.live,
            "--failing",
            server.failing,
            "--requests",
            str(requests),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"soak {subject} failed:\n{done.stderr[-4000:]}")
    points: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return points


# -- the child ------------------------------------------------------------------------------------


def _held() -> dict[str, float]:
    import psutil

    gc.collect()
    return {
        "fds": float(len(os.listdir("/proc/self/fd"))),
        "rss": float(psutil.Process().memory_info().rss),
    }


def _models(subject: str, live: str, failing: str) -> tuple[Any, Any]:
    """The chat model, and the one whose primary fails, of ``subject``."""
    from benchmarks.suites import _chat_openai, _forge_chat, forge_config

    if subject == "forge":
        return _forge_chat(forge_config(live)), _forge_chat(forge_config(failing, live))
    failover = _chat_openai(failing, max_retries=0).with_fallbacks([_chat_openai(live)])
    return _chat_openai(live), failover


def _cycle(
    model: Any, failover: Any, loop: asyncio.AbstractEventLoop, check: Callable[[Any], None]
) -> None:
    """One cycle of the mix (module docstring)."""
    from benchmarks.suites import PROMPT

    for _ in range(3):
        check(model.invoke(PROMPT).content)
    for _ in range(2):
        check("".join(str(chunk.content) for chunk in model.stream(PROMPT)))
    for _ in range(2):
        check(loop.run_until_complete(model.ainvoke(PROMPT)).content)
    for _ in range(2):
        check(asyncio.run(model.ainvoke(PROMPT)).content)
    check(failover.invoke(PROMPT).content)


def _run(subject: str, live: str, failing: str, requests: int) -> list[dict[str, float]]:
    from benchmarks.suites import EXPECTED

    def check(content: Any) -> None:
        if content != EXPECTED:
            raise AssertionError(f"soak {subject}: unexpected answer {content!r}")

    model, failover = _models(subject, live, failing)
    loop = asyncio.new_event_loop()
    cycles = -(-requests // CYCLE)
    try:
        for _ in range(max(MIN_WARMUP_CYCLES, round(cycles * WARMUP_SHARE))):
            _cycle(model, failover, loop, check)
        points = [_held()]
        every = max(1, cycles // CHECKPOINTS)
        for done in range(1, cycles + 1):
            _cycle(model, failover, loop, check)
            if done % every == 0 or done == cycles:
                points.append(_held())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return points


def main() -> None:
    """``python -m benchmarks.soak SUBJECT --live URL --failing URL --requests N``: prints the
    checkpoints as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("subject", choices=sorted(SUBJECTS))
    parser.add_argument("--live", required=True)
    parser.add_argument("--failing", required=True)
    parser.add_argument("--requests", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(_run(args.subject, args.live, args.failing, args.requests)))


if __name__ == "__main__":
    main()
