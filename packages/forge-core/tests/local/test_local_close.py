"""Worker processes and threads of the embedded model stay flat over many event loops, and
leave with the last `Forge` using them (issue #30): counted as child processes and thread
names of this process."""

from __future__ import annotations

import asyncio

import pytest
from forge_core import EMBEDDED_MODEL, Forge
from forge_core.backends.local.pool import loaded_models
from forge_test_support import config_for
from held_resources import Held

pytestmark = pytest.mark.local_model

PROMPT = "Say hi."
LOOPS = 8


def _forge() -> Forge:
    return Forge(
        config_for(
            {"name": "huggingface", "models": [{"name": EMBEDDED_MODEL}], "isolation": "process"}
        )
    )


def _worker_threads(held: Held) -> list[str]:
    return [name for name in held.threads if name.startswith("forge-worker-")]


def test_a_worker_serves_every_event_loop_and_stops_with_the_forge() -> None:
    # The session's servers and models other tests loaded are this process's too: count
    # what this Forge adds to them.
    start, loaded = Held.now(), loaded_models()
    forge = _forge()
    assert forge.chat(PROMPT, max_tokens=1).content is not None  # starts the worker
    before = Held.now()
    assert len(set(before.children) - set(start.children)) == 1
    assert len(_worker_threads(before)) == len(_worker_threads(start)) + 1  # its stderr reader
    for _ in range(LOOPS):
        assert asyncio.run(forge.achat(PROMPT, max_tokens=1)).content is not None
    after = Held.now()
    assert (after.children, after.threads) == (before.children, before.threads)
    forge.close()
    closed = Held.now()
    assert closed.children == start.children
    assert _worker_threads(closed) == _worker_threads(start)
    assert loaded_models() == loaded


def test_a_model_two_forges_use_stays_loaded_until_the_last_one_closes() -> None:
    start, loaded = set(Held.now().children), loaded_models()
    first, second = _forge(), _forge()
    first.chat(PROMPT, max_tokens=1)
    second.chat(PROMPT, max_tokens=1)
    [worker] = set(Held.now().children) - start
    first.close()
    assert set(Held.now().children) - start == {worker}
    assert second.chat(PROMPT, max_tokens=1).content is not None
    second.close()
    assert set(Held.now().children) == start
    assert loaded_models() == loaded
