"""The ``tracing`` benchmark runs end to end with tiny counts and yields well-formed rows.

Shape only, never timings (as test_benchmarks_smoke.py): ``ForgeChat.invoke`` with telemetry
off and on against the real loopback server, the ratio and its 5% target, spans exported.
Skipped when the ``bench`` dependency group is not installed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")

from benchmark_rows import well_formed

from benchmarks import suites
from benchmarks.server import loopback_server


def test_tracing_rows() -> None:
    with loopback_server() as server:
        rows = well_formed(suites.tracing(server, suites.SMOKE), "tracing")
    on = rows["forge ForgeChat.invoke, tracing on"]
    assert on.peer == "forge ForgeChat.invoke, tracing off"
    assert on.target == "≤ 1.05x"
    rounds = suites.TRACING_SAMPLES * suites.SMOKE.rounds
    calls = suites.SMOKE.warmup + rounds * -(-suites.TRACING_SAMPLES * suites.SMOKE.calls // rounds)
    assert on.note.startswith(f"{2 * (calls + 1)} spans exported")
    assert on.note.endswith(f"the median of {rounds} rounds' p50 ratios")


def test_round_pairs_are_each_rounds_p50s() -> None:
    # Two rounds of three calls each (`_timed_rounds` keeps a subject's rounds in order); the
    # machine was twice as slow in the second round, for both subjects alike.
    samples = {"on": [1.1, 9.0, 1.0, 2.2, 2.3, 0.1], "off": [1.0, 1.1, 0.9, 2.0, 2.1, 1.9]}
    assert suites._round_pairs(samples, "on", "off", 2) == [(1.1, 1.0), (2.2, 2.0)]
