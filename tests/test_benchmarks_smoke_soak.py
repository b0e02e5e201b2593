"""The ``soak`` benchmark runs end to end with tiny counts and yields well-formed rows.

Shape only, never the numbers (as test_benchmarks_smoke.py): forge's and ChatOpenAI's child
processes run the mix against the real loopback server and report descriptors and RSS, and
forge's rows carry the +0 descriptors and +5 MB targets. 100k requests are for `make bench`.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")

# benchmark_rows puts the repository root on sys.path: `benchmarks` imports after it.
from benchmark_rows import well_formed

from benchmarks import soak, suites
from benchmarks.server import loopback_server


def test_soak_rows() -> None:
    with loopback_server() as server:
        rows = well_formed(soak.soak(server, suites.SMOKE.soak_requests), "soak")
    label = f"{suites.SMOKE.soak_requests} mixed requests"
    fds = rows[f"forge ForgeChat, {label}: open descriptors"]
    rss = rows[f"forge ForgeChat, {label}: RSS"]
    assert fds.peer == f"ChatOpenAI, {label}: open descriptors"
    assert (fds.target, rss.target) == ("+0 fds", "≤ +5 MB")
    assert fds.met is not None and rss.met is not None
    assert fds.note.endswith("since warm-up") and "growth" in fds.extra
    assert fds.samples == rss.samples >= 1  # a checkpoint a cycle, at most soak.CHECKPOINTS
