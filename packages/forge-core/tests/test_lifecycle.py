"""No leak per event loop, and a `Forge` closes what it opens: counted on real sockets,
descriptors, threads and loops (`held_resources`), against in-process fault servers.

Issue #30: an app running one request per ``asyncio.run`` (Celery tasks, scripts, notebooks,
function-scoped test loops) kept every loop's connection pool, one socket each, for good.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest
from fault_server import FaultServer, forge_on, ok, status
from forge_core import ChatResponse, Forge
from held_resources import Held, client_sockets, closed_loops_alive

PROMPT = "hi"
#: Loops run in a test: enough that a per-loop leak shows, bounded so the test stays quick.
LOOPS = 60


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(default=ok("answer", "ans", "wer")) as running:
        yield running


def _text(chunks: list[object]) -> str:
    return "".join(getattr(chunk, "content", "") for chunk in chunks)


async def _streamed(forge: Forge) -> str:
    return _text([chunk async for chunk in forge.astream(PROMPT)])


def test_one_asyncio_run_per_request_keeps_no_socket_loop_or_thread(server: FaultServer) -> None:
    with forge_on(server) as forge:
        asyncio.run(forge.achat(PROMPT))  # imports and first connection out of the count
        before, loops = Held.now(server.port), closed_loops_alive()
        for _ in range(LOOPS):
            answer = asyncio.run(forge.achat(PROMPT))
            assert answer.content == "answer"
            # The loop's connection was closed while asyncio.run shut the loop down.
            assert client_sockets(server.port) == 0
        after = Held.now(server.port)
        assert closed_loops_alive() == loops
    assert after == before
    assert len(server.requests) == LOOPS + 1


def test_concurrent_calls_streams_and_a_failing_primary_in_each_loop_leave_nothing(
    server: FaultServer,
) -> None:
    with FaultServer(default=status(500)) as failing, forge_on(failing, server) as forge:

        async def burst() -> list[str]:
            calls = [forge.achat(PROMPT) for _ in range(10)]
            streams = [_streamed(forge) for _ in range(5)]
            answers = await asyncio.gather(*calls, *streams)
            return [a.content if isinstance(a, ChatResponse) else a for a in answers]

        assert asyncio.run(burst()) == ["answer"] * 15
        before, loops = Held.now(server.port, failing.port), closed_loops_alive()
        for _ in range(LOOPS // 6):
            assert asyncio.run(burst()) == ["answer"] * 15
            assert client_sockets(server.port) == client_sockets(failing.port) == 0
        after = Held.now(server.port, failing.port)
        assert closed_loops_alive() == loops
    assert after == before


def test_a_loop_closed_without_asyncio_run_is_freed_at_the_next_loop_or_at_close(
    server: FaultServer,
) -> None:
    forge = forge_on(server)
    loops = closed_loops_alive()
    for _ in range(LOOPS // 3):
        assert _in_a_loop_closed_by_hand(forge).content == "answer"
        # Only the last loop's connection is left: each new loop frees the closed ones.
        assert client_sockets(server.port) == 1
    forge.close()
    assert client_sockets(server.port) == 0
    assert closed_loops_alive() == loops


def _in_a_loop_closed_by_hand(forge: Forge) -> ChatResponse:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(forge.achat(PROMPT))
    finally:
        loop.close()  # no shutdown_asyncgens: nothing tells forge the loop ended


def test_close_closes_every_connection_whatever_loop_or_thread_made_it(
    server: FaultServer,
) -> None:
    forge = forge_on(server)
    assert forge.chat(PROMPT).content == "answer"
    assert _text(list(forge.stream(PROMPT))) == "answer"  # on forge's background loop
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever)
    thread.start()
    stopped = asyncio.new_event_loop()
    try:
        asyncio.run_coroutine_threadsafe(forge.achat(PROMPT), running).result(10)
        assert stopped.run_until_complete(forge.achat(PROMPT)).content == "answer"
        # Sync, a loop running in a thread, a stopped loop (the stream's connection, read to
        # its last event, may be closed already).
        assert client_sockets(server.port) >= 3
        forge.close()
        assert client_sockets(server.port) == 0
        assert forge.closed
    finally:
        running.call_soon_threadsafe(running.stop)
        thread.join(10)
        running.close()
        stopped.close()


async def test_async_with_closes_the_running_loops_connections_before_it_ends(
    server: FaultServer,
) -> None:
    async with forge_on(server) as forge:
        assert await _streamed(forge) == "answer"
        assert (await forge.achat(PROMPT)).content == "answer"
        assert client_sockets(server.port) == 1
    assert client_sockets(server.port) == 0
    assert forge.closed


def test_with_closes_and_a_closed_forge_refuses_requests(server: FaultServer) -> None:
    with forge_on(server) as forge:
        forge.chat(PROMPT)
    assert client_sockets(server.port) == 0
    forge.close()  # again: nothing happens
    with pytest.raises(RuntimeError, match="closed"):
        forge.chat(PROMPT)
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(forge.achat(PROMPT))
    with pytest.raises(RuntimeError, match="closed"):
        forge.stream(PROMPT)


def test_close_stops_the_health_monitors_it_started(server: FaultServer) -> None:
    forge = forge_on(server)
    monitor = forge.start_health_monitor(interval_seconds=0.05)
    assert monitor.wait_for_rounds(2, timeout=10)
    forge.close()
    assert not monitor.running
    assert "forge-health" not in [thread.name for thread in threading.enumerate()]
    assert client_sockets(server.port) == 0


def test_a_forge_garbage_collected_unclosed_closes_its_connections(server: FaultServer) -> None:
    forge = forge_on(server)
    forge.chat(PROMPT)
    asyncio.run(forge.achat(PROMPT))
    assert client_sockets(server.port) == 1  # the sync one; the loop's closed with it
    del forge
    gc.collect()
    assert client_sockets(server.port) == 0


def test_at_interpreter_exit_nothing_hangs_and_nothing_warns(server: FaultServer) -> None:
    # Everything left open: sync and async connections, a manually closed loop, the sync
    # streams' loop, a health monitor. An unclosed socket, transport or loop would warn (an
    # error here), a task the loop dropped would be logged, an "Exception ignored" printed.
    script = textwrap.dedent(
        f"""
        import asyncio
        from forge_core import Forge, ForgeConfig

        config = ForgeConfig.model_validate({{
            "model_preferences": {{"local_first": False}},
            "providers": {{
                "cloud": {{"openai": {{"base_url": "{server.base_url}", "default_model": "m",
                                      "api_key_env": None}}}},
                "fallback": {{"order": ["openai"]}},
            }},
        }})
        forge = Forge(config)
        forge.start_health_monitor(interval_seconds=0.05)
        print(forge.chat("hi").content)
        print("".join(chunk.content for chunk in forge.stream("hi")))
        print(asyncio.run(forge.achat("hi")).content)
        loop = asyncio.new_event_loop()
        print(loop.run_until_complete(forge.achat("hi")).content)
        loop.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["answer"] * 4
    assert done.stderr == ""
