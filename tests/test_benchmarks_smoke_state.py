"""The ``state`` benchmark runs end to end with tiny counts and yields well-formed rows.

Shape only, never timings (as test_benchmarks_smoke.py): ``Forge.chat`` with ``routing.state``
memory and redis against the real loopback server and a real ``redis-server`` the benchmark
starts itself, the +0.3 ms target, and the breaker propagation row from a worker process.
Without a redis-server (or the redis client) the suite yields no rows and says why.
"""

from __future__ import annotations

import pytest

# benchmark_rows puts the repository root on sys.path: `benchmarks` imports after it.
from benchmark_rows import well_formed

from benchmarks import redis_fleet, suites
from benchmarks.server import loopback_server

pytestmark = pytest.mark.redis_server


def test_state_rows() -> None:
    why = redis_fleet.missing()
    if why is not None:
        pytest.skip(why)
    with loopback_server() as server:
        rows = well_formed(suites.state(server, suites.SMOKE), "state")
    redis = rows["forge Forge.chat, state redis"]
    assert redis.peer == "forge Forge.chat, state memory"
    assert redis.target == "≤ +0.3 ms"
    assert "ms vs memory" in redis.note and "Redis commands a call" in redis.note
    propagation = rows["breaker opened in one process, seen open by another"]
    assert propagation.samples == suites.SMOKE.propagation_trials
    assert propagation.target == "≤ 100 ms"
    assert "closing seen after" in propagation.note


def test_state_is_skipped_with_a_note_without_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(redis_fleet, "missing", lambda: "no redis-server here")
    with loopback_server() as server:
        assert suites.state(server, suites.SMOKE) == []
    assert "# state: skipped: no redis-server here" in capsys.readouterr().err
