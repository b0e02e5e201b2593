"""Result rows, percentiles, the machine description and the README table."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

START_MARKER = "<!-- bench:start -->"
END_MARKER = "<!-- bench:end -->"


@dataclass
class Row:
    """One measured subject: p50/p95 of ``unit``, and its ratio to ``peer`` when it has one.

    ``higher_is_better`` flips the ratio so that a ratio above 1.0 always means forge costs
    more (slower, fewer tokens/s, less throughput) than the peer.
    """

    benchmark: str
    subject: str
    unit: str
    p50: float
    p95: float
    samples: int
    peer: str | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    note: str = ""
    higher_is_better: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The row as plain data (JSON)."""
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0..100) of ``values``, nearest-rank on the sorted list."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def row(benchmark: str, subject: str, unit: str, values: Sequence[float], **kw: Any) -> Row:
    """A row with p50/p95 of ``values``."""
    return Row(
        benchmark, subject, unit, percentile(values, 50), percentile(values, 95), len(values), **kw
    )


def _ratio(mine: float, theirs: float, *, higher_is_better: bool) -> float:
    """forge's cost relative to the peer's: above 1.0 forge is slower."""
    if higher_is_better:
        return theirs / mine if mine else float("inf")
    return mine / theirs if theirs else float("inf")


def compare(
    rows: list[Row],
    subject: str,
    peer: str,
    *,
    limit: float | None = None,
    label: str = "",
    pairs: Sequence[tuple[float, float]] | None = None,
) -> None:
    """Set ``subject``'s ratio to ``peer``'s, and whether it meets ``limit`` if given.

    The ratio is of the two p50s; with ``pairs`` (``(subject, peer)`` measured back to back)
    it is the median of the per-pair ratios instead, which cancels drift in the machine's
    speed between runs that are seconds apart.
    """
    by_name = {r.subject: r for r in rows}
    mine, theirs = by_name[subject], by_name[peer]
    if pairs:
        ratio = statistics.median(
            _ratio(a, b, higher_is_better=mine.higher_is_better) for a, b in pairs
        )
    else:
        ratio = _ratio(mine.p50, theirs.p50, higher_is_better=mine.higher_is_better)
    mine.peer, mine.ratio = peer, ratio
    if limit is not None:
        mine.target = label or f"≤ {limit:g}x"
        mine.met = ratio <= limit


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python, load average and the date: what the numbers depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        if found:
            cpu = found.group(1).strip()
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_1m": round(load[0], 2),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _fmt(value: float, unit: str) -> str:
    if unit in ("ms", "ms/call", "µs"):
        return f"{value:.2f}" if value < 100 else f"{value:,.0f}"
    if unit in ("tokens/s", "req/s"):
        return f"{value:,.1f}"
    return f"{value:g}"


def markdown(rows: Sequence[Row], info: dict[str, Any], command: str) -> str:
    """The results table with the machine described above it."""
    lines = [
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), Python "
        f"{info['python']}, {info['platform']}; load average {info['load_1m']} at the start"
        + (f", {info['load_1m_end']} at the end" if "load_1m_end" in info else "")
        + f" (other work shares these cores: compare within a run, not across runs). "
        f"Regenerate with `{command}`.",
        "Ratio is forge's p50 over the peer's (for tokens/s and req/s, the peer's over forge's): "
        "below 1.0 forge is faster.",
        "",
        "| benchmark | subject | unit | p50 | p95 | n | vs | ratio | target | note |",
        "|---|---|---|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        target = ""
        if r.target:
            target = f"{r.target} {'✅' if r.met else '❌'}"
        lines.append(
            f"| {r.benchmark} | {r.subject} | {r.unit} | {_fmt(r.p50, r.unit)} | "
            f"{_fmt(r.p95, r.unit)} | {r.samples} | {r.peer or ''} | {ratio} | {target} | "
            f"{r.note} |"
        )
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between the bench markers (appending them if absent)."""
    text = readme.read_text(encoding="utf-8")
    block = f"{START_MARKER}\n{table}{END_MARKER}"
    if START_MARKER in text and END_MARKER in text:
        head, _, rest = text.partition(START_MARKER)
        _, _, tail = rest.partition(END_MARKER)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Benchmarks\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")
