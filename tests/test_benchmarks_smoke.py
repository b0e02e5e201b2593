"""The benchmark harness runs end to end with tiny counts and yields well-formed rows.

Checks shape only, never timings: each benchmark function against the real loopback server
(a separate process) must produce its rows with finite, positive percentiles, the ratios its
targets need, and a README section that round-trips. Skipped when the ``bench`` dependency
group (the peers) is not installed. The local suite, which runs the embedded model, is in
test_benchmarks_smoke_local_model.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("langchain_openai", reason="the `bench` dependency group is not installed")
pytest.importorskip("llama_index.llms.openai_like", reason="the `bench` group is not installed")

# benchmark_rows puts the repository root on sys.path: `benchmarks` imports after it.
from benchmark_rows import well_formed

from benchmarks import report, suites
from benchmarks.server import Loopback, loopback_server


@pytest.fixture(scope="module")
def server() -> Iterator[Loopback]:
    with loopback_server() as running:
        yield running


def test_loopback_server_modes(server: Loopback) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=2.0) as http:
        answer = http.post(server.live + "/chat/completions", json=body)
        assert answer.json()["choices"][0]["message"]["content"] == suites.EXPECTED
        streamed = http.post(server.live + "/chat/completions", json={**body, "stream": True})
        assert streamed.headers["content-type"] == "text/event-stream"
        assert streamed.text.rstrip().endswith("data: [DONE]")
        limited = http.post(server.ratelimited + "/chat/completions", json=body)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        with pytest.raises(httpx.ConnectError):
            http.post(server.refused + "/chat/completions", json=body)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.stalled + "/chat/completions", json=body, timeout=0.2)


def test_overhead_rows(server: Loopback) -> None:
    rows = well_formed(suites.overhead(server, suites.SMOKE), "overhead")
    assert rows["forge Forge.chat"].peer == "raw httpx"
    assert rows["forge ForgeChat.invoke"].target is not None


def test_failover_rows(server: Loopback) -> None:
    rows = well_formed(suites.failover(server, suites.SMOKE), "failover")
    assert rows["refused: forge, circuit open"].note.startswith("primary skipped")
    assert rows["refused: forge, circuit closed"].note.startswith("primary tried")
    assert rows["stalled: forge, first call"].note.startswith("primary tried")


def test_streaming_rows(server: Loopback) -> None:
    rows = well_formed(suites.streaming(server, suites.SMOKE), "streaming")
    assert rows["forge ForgeChat.stream TTFT"].target == "≤ +1 ms"


def test_concurrency_rows(server: Loopback) -> None:
    rows = well_formed(suites.concurrency(server, suites.SMOKE), "concurrency")
    n = suites.SMOKE.concurrency
    assert f"forge ForgeChat.ainvoke x{n} throughput" in rows
    assert rows[f"forge ForgeChat.ainvoke x{n} throughput"].extra["open_sockets"] >= 0


def test_import_rows() -> None:
    well_formed(suites.import_time(suites.SMOKE, modules=("forge_core",)), "import")


def test_readme_section_round_trips(tmp_path: Path) -> None:
    rows = [
        report.row("overhead", "a", "ms/call", [1.0, 2.0]),
        report.row("overhead", "b", "ms/call", [2.0]),
    ]
    report.compare(rows, "a", "b", limit=1.0)
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\ntext\n", encoding="utf-8")
    table = report.markdown(rows, report.machine(), "make bench")
    report.update_readme(readme, table)
    report.update_readme(readme, table)
    text = readme.read_text(encoding="utf-8")
    assert text.count(report.START_MARKER) == 1 and text.count(report.END_MARKER) == 1
    assert text.startswith("# title\n\ntext\n")
    assert "| overhead | a | ms/call |" in text
