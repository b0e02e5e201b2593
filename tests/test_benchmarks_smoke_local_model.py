"""The benchmark harness's local suite (the embedded model, in forge's worker process and in
process) runs end to end with tiny counts and yields well-formed rows.

Checks shape only, never timings; the other suites are in test_benchmarks_smoke.py. Skipped when
the ``bench`` dependency group (the peers) is not installed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")
pytest.importorskip("llama_index.llms.openai_like", reason="the `bench` group is not installed")

# benchmark_rows puts the repository root on sys.path: `benchmarks` imports after it.
from benchmark_rows import well_formed

from benchmarks import suites

pytestmark = pytest.mark.local_model


def test_local_rows() -> None:
    rows = well_formed(suites.local(suites.SMOKE), "local")
    for where in ("worker process", "in process"):
        assert rows[f"forge ForgeChat.stream (local, {where})"].peer == "llama-cpp-python direct"
    worker_ttft = rows["forge ForgeChat.stream (local, worker process) TTFT"]
    assert worker_ttft.peer == "forge ForgeChat.stream (local, in process) TTFT"
    assert "worker resident memory" in worker_ttft.note


def test_tracing_a_model_rows() -> None:
    rows = well_formed(suites.tracing_a_model(suites.SMOKE), "tracing")
    on = rows["forge ForgeChat.invoke (embedded model), tracing on"]
    assert on.peer == "forge ForgeChat.invoke (embedded model), tracing off"
    assert on.target is None and on.ratio is not None
