"""``python -m benchmarks``: run every benchmark, print the table, rewrite the README section.

Options: ``--only overhead,failover`` runs a subset; ``--smoke`` uses tiny iteration counts
(harness check, numbers meaningless) and never touches the README; ``--json PATH`` writes the
rows; ``--profile`` runs pyinstrument over forge's overhead calls instead of benchmarking.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import suites
from benchmarks.affinity import affinity
from benchmarks.deployments import deployments
from benchmarks.report import Row, machine, markdown, update_readme
from benchmarks.server import Loopback, loopback_server
from benchmarks.soak import soak

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "make bench"
NAMES = (
    "overhead",
    "failover",
    "streaming",
    "concurrency",
    "local",
    "import",
    "tracing",
    "deployments",
    "state",
    "affinity",
    "soak",
)


def run(names: list[str], sizes: suites.Sizes) -> list[Row]:
    """Run the named benchmarks in order against one loopback server."""
    suites.quiet_litellm()
    rows: list[Row] = []
    with loopback_server() as server:
        table: dict[str, Callable[[Loopback], list[Row]]] = {
            "overhead": lambda s: suites.overhead(s, sizes),
            "failover": lambda s: suites.failover(s, sizes),
            "streaming": lambda s: suites.streaming(s, sizes),
            "concurrency": lambda s: suites.concurrency(s, sizes),
            "local": lambda s: suites.local(sizes),
            "import": lambda s: suites.import_time(sizes),
            "tracing": lambda s: suites.tracing(s, sizes) + suites.tracing_a_model(sizes),
            "state": lambda s: suites.state(s, sizes),
            "deployments": lambda s: deployments(s, sizes),
            "affinity": lambda s: affinity(smoke=sizes is suites.SMOKE),
            "soak": lambda s: soak(s, sizes.soak_requests),
        }
        for name in names:
            start = time.perf_counter()
            produced = table[name](server)
            print(f"# {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            rows += produced
    return rows


def profile(calls: int) -> None:
    """pyinstrument over forge's three overhead subjects, printed as text."""
    from pyinstrument import Profiler

    with loopback_server() as server:
        subjects = suites.overhead_subjects(server)
        for name in ("forge Forge.chat", "forge ForgeChat.invoke", "forge ForgeLLM.chat"):
            call = subjects[name]
            for _ in range(50):
                call()
            profiler = Profiler(interval=0.0001)
            profiler.start()
            for _ in range(calls):
                call()
            profiler.stop()
            print(f"===== {name} ({calls} calls)")
            print(profiler.output_text(unicode=False, color=False, show_all=False))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(NAMES), help="comma-separated: " + ", ".join(NAMES)
    )
    parser.add_argument("--smoke", action="store_true", help="tiny counts; README untouched")
    parser.add_argument("--json", type=Path, help="also write the rows and machine info here")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    parser.add_argument("--profile", action="store_true", help="profile forge's overhead calls")
    parser.add_argument("--profile-calls", type=int, default=500)
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile_calls)
        return
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    info = machine()
    rows = run(names, suites.SMOKE if args.smoke else suites.FULL)
    info["load_1m_end"] = machine()["load_1m"]
    table = markdown(rows, info, COMMAND)
    print(table)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "rows": [r.as_dict() for r in rows]}, indent=2),
            encoding="utf-8",
        )
    if not (args.smoke or args.no_readme) and names == list(NAMES):
        update_readme(ROOT / "README.md", table)


if __name__ == "__main__":
    main()
