"""Recipe: read the route trail of one answer and the router's `Forge.stats()`.

Run: `.tools/bin/uv run python cookbook/route_trail_and_stats.py` from the repo root. Stats
live in the `Forge` object (per process): keep one `Forge` for your app and read them from it.
From the shell, `forge stats --after-chat "Hi"` shows the same for one request.
"""

from forge_core import Forge

forge = Forge()
for prompt in ("Name a colour.", "Name a fruit."):
    answer = forge.chat(prompt, max_tokens=8)

# The trail: every candidate tried (ok or not, with the error kind) and every one skipped.
route = answer.route
for attempt in route.attempts:
    print(f"tried {attempt.provider}:{attempt.model} ok={attempt.ok} error={attempt.error_kind}")
for drop in route.drops:
    print(f"skipped {drop.provider}: {drop.reason}")
if route.total_ms is not None:
    print(f"total {route.total_ms:.0f} ms")

stats = forge.stats()
for key, series in stats["models"].items():
    # Latency percentiles cover successful calls; failures are counted by kind.
    p50 = series["latency_ms"]["p50"]
    latency = f"p50 {p50:.0f} ms" if p50 is not None else "no successful call"
    print(f"{key}: {series['successes']}/{series['requests']} ok, {latency}")
    print(f"  failures: {series['failures']}")
for endpoint, circuit in stats["circuits"].items():
    print(f"circuit {endpoint}: {circuit['state']}")
