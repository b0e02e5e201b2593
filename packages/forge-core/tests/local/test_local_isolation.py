"""Crash isolation: the embedded model in a worker process, killed with real signals.

The tests kill the worker from this process with ``os.kill`` at a chosen point (a log record
the worker client writes), so the crash lands exactly where each test needs it: before the
answer, mid-stream, or during the load.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Iterator

import pytest
from fault_server import FaultServer, ok
from forge_core import EMBEDDED_MODEL, Forge, Provider, StreamInterrupted
from forge_core.backends.local import backend as _huggingface
from forge_core.backends.local import worker as _local_worker
from forge_core.backends.local.backend import HuggingFaceBackend
from forge_core.backends.local.pool import unload_models
from forge_test_support import config_for

pytestmark = pytest.mark.local_model

FALLBACK_ANSWER = "the fallback answered"
PROMPT = "What is the capital of France?"


class _KillOn(logging.Handler):
    """Kills the worker named in the first ``forge.llama_cpp`` record containing ``text``."""

    def __init__(self, text: str, signum: int, times: int = 1) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.signum = signum
        self.times = times
        self.killed: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.killed) >= self.times or self.text not in record.getMessage():
            return
        pid = int(record.args[0])  # type: ignore[index]
        self.killed.append(pid)
        os.kill(pid, self.signum)


@pytest.fixture
def kill_on() -> Iterator[Callable[..., _KillOn]]:
    logger = logging.getLogger("forge.llama_cpp")
    level = logger.level
    handlers: list[_KillOn] = []

    def install(text: str, signum: int, times: int = 1) -> _KillOn:
        handler = _KillOn(text, signum, times)
        handlers.append(handler)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        return handler

    yield install
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)
    unload_models()
    _local_worker._crashes.clear()
    _huggingface._runtime_checks.clear()


def _forge(server: FaultServer) -> Forge:
    return Forge(
        config_for(
            {"name": "huggingface", "models": [{"name": EMBEDDED_MODEL}], "isolation": "process"},
            {"name": "openai", "base_url": server.base_url, "default_model": "m"},
        )
    )


def _backend(forge: Forge) -> HuggingFaceBackend:
    backend = forge.router.backends[Provider.HUGGINGFACE]
    assert isinstance(backend, HuggingFaceBackend)
    return backend


@pytest.mark.parametrize("signum", [signal.SIGSEGV, signal.SIGKILL], ids=["SIGSEGV", "SIGKILL"])
def test_a_worker_killed_before_the_answer_falls_back(
    signum: int, kill_on: Callable[..., _KillOn]
) -> None:
    with FaultServer(default=ok(FALLBACK_ANSWER)) as server:
        forge = _forge(server)
        killer = kill_on("sent a chunk", signum)
        answer = forge.chat(PROMPT, max_tokens=24, temperature=0)
    assert killer.killed, "the worker was never killed"
    assert answer.provider is Provider.OPENAI and answer.content == FALLBACK_ANSWER
    crashed, served = answer.route.attempts
    assert crashed.provider is Provider.HUGGINGFACE and not crashed.ok
    assert crashed.error_kind == "crashed"
    assert crashed.message is not None
    assert signal.Signals(signum).name in crashed.message and EMBEDDED_MODEL in crashed.message
    assert served.ok


def test_a_worker_killed_mid_stream_interrupts_with_the_partial_text_and_is_replaced(
    kill_on: Callable[..., _KillOn],
) -> None:
    with FaultServer(default=ok(FALLBACK_ANSWER)) as server:
        forge = _forge(server)
        received: list[str] = []
        stream = forge.stream(PROMPT, max_tokens=24, temperature=0)
        with pytest.raises(StreamInterrupted) as interrupted:
            for chunk in stream:
                received.append(chunk.content)
                if "".join(received).strip():
                    [pid] = _backend(forge).stats()["models"][0]["worker_pids"]
                    os.kill(pid, signal.SIGSEGV)
        assert interrupted.value.partial == "".join(received) and interrupted.value.partial
        assert interrupted.value.provider == "huggingface"
        assert "SIGSEGV" in str(interrupted.value.cause)

        again = forge.chat(PROMPT, max_tokens=8, temperature=0)
        assert again.provider is Provider.HUGGINGFACE and again.content
        [new_pid] = _backend(forge).stats()["models"][0]["worker_pids"]
        assert new_pid != pid
        assert not server.requests, "the fallback was asked although the stream had started"


def test_workers_dying_on_load_three_times_show_as_down_with_the_signal(
    kill_on: Callable[..., _KillOn],
) -> None:
    with FaultServer(default=ok(FALLBACK_ANSWER)) as server:
        forge = _forge(server)
        backend = _backend(forge)
        killer = kill_on("started for", signal.SIGSEGV, times=3)
        for _ in range(3):
            answer = forge.chat(PROMPT, max_tokens=4)
            assert answer.provider is Provider.OPENAI
        assert len(killer.killed) == 3
        report = backend.runtime_report()
        assert report.status == "down"
        assert report.crashes.streak == 3 and report.crashes.last_signal == "SIGSEGV"
        assert "3 times in a row" in report.reason and "SIGSEGV" in report.reason
        assert forge.check_health(refresh=True)["huggingface"] == "down"


def test_the_runtime_check_loads_and_generates_in_a_child(
    kill_on: Callable[..., _KillOn],
) -> None:
    with FaultServer() as server:
        backend = _backend(_forge(server))
        report = backend.runtime_report()
        assert report.status == "up" and "generated a token" in report.reason
        assert backend.stats()["models"] == [], "the check must not load the model here"

        _huggingface._runtime_checks.clear()
        kill_on("started for", signal.SIGABRT)
        report = backend.runtime_report()
        assert report.status == "down" and "SIGABRT" in report.reason
        assert backend.runtime_report().status == "down", "a failed check is trusted a while"

        # Once FAILED_CHECK_RETRY_SECONDS have passed, the check runs again (and now passes).
        [(key, failed)] = _huggingface._runtime_checks.items()
        earlier = failed.checked_at - _huggingface.FAILED_CHECK_RETRY_SECONDS
        _huggingface._runtime_checks[key] = dataclasses.replace(failed, checked_at=earlier)
        assert backend.runtime_report().status == "up"


def test_thread_isolation_runs_the_model_in_this_process() -> None:
    backend = HuggingFaceBackend(
        _huggingface.HuggingFaceConfig.model_validate(
            {"models": [{"name": EMBEDDED_MODEL}], "isolation": "thread"}
        )
    )
    backend.warm()
    [model] = backend.stats()["models"]
    assert model["isolation"] == "thread" and model["worker_pids"] == []
    unload_models()
