"""The benchmark harness's local suite (the embedded model, in forge's worker process and in
process) runs end to end with tiny counts and yields well-formed rows.

Checks shape only, never timings; the other suites are in test_benchmarks_smoke.py. Skipped when
the ``bench`` dependency group (the peers) is not installed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")
pytest.importorskip("llama_index.llms.openai_like", reason="the `bench` group is not installed")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report, suites  # noqa: E402

pytestmark = pytest.mark.local_model


def _well_formed(rows: list[report.Row], benchmark: str) -> dict[str, report.Row]:
    assert rows, f"{benchmark}: no rows"
    for r in rows:
        assert r.benchmark == benchmark
        assert r.samples >= 1
        assert math.isfinite(r.p50) and r.p50 > 0, r
        assert math.isfinite(r.p95) and r.p95 >= r.p50, r
        if r.peer is not None:
            assert r.ratio is not None and math.isfinite(r.ratio) and r.ratio > 0, r
    names = [r.subject for r in rows]
    assert len(names) == len(set(names)), f"duplicate subjects: {names}"
    return {r.subject: r for r in rows}


def test_local_rows() -> None:
    rows = _well_formed(suites.local(suites.SMOKE), "local")
    for where in ("worker process", "in process"):
        assert rows[f"forge ForgeChat.stream (local, {where})"].peer == "llama-cpp-python direct"
    worker_ttft = rows["forge ForgeChat.stream (local, worker process) TTFT"]
    assert worker_ttft.peer == "forge ForgeChat.stream (local, in process) TTFT"
    assert "worker resident memory" in worker_ttft.note
