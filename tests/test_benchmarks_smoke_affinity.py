"""The ``affinity`` benchmark (#32) runs end to end with tiny counts and yields well-formed rows.

Shape only, never timings: two real llama-cpp-python servers, forge pinned, with affinity and
without (the LiteLLM rows need the full run). Skipped when the ``bench`` dependency group is
not installed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")

# benchmark_rows puts the repository root on sys.path: `benchmarks` imports after it.
from benchmark_rows import well_formed

from benchmarks.affinity import affinity

pytestmark = pytest.mark.local_server


def test_affinity_rows() -> None:
    rows = well_formed(affinity(smoke=True), "affinity")
    prefix = rows["forge Forge.stream (affinity: prefix)"]
    assert prefix.peer == "each conversation pinned to its server"
    assert prefix.target == "≤ 1.2x"
    # Why each turn went where it went: the later turns by the prefix they hold.
    assert "every turn placed by " in prefix.note and "prefix " in prefix.note
    assert "forge Forge.stream (affinity: off)" in rows
