"""Shape checks on the rows the benchmark harness (``benchmarks/``, at the repository root) yields.

Importing this module puts the repository root on ``sys.path``, so ``benchmarks`` imports after it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402


def well_formed(rows: list[report.Row], benchmark: str) -> dict[str, report.Row]:
    """Assert every row of ``benchmark`` is well formed (samples, finite and ordered
    percentiles, a positive ratio where there is a peer, unique subjects); map them by subject."""
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
