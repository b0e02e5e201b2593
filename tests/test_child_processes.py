"""A server the tests start does not outlive a test process that is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from child_processes import ending_with_this_process


@pytest.mark.skipif(
    ending_with_this_process(["x"]) == ["x"], reason="needs Linux and util-linux setpriv"
)
def test_a_started_server_ends_when_the_test_process_is_killed() -> None:
    # A stand-in for a test run: it starts a long "server" and reports its pid, then is
    # killed with SIGKILL, so that no teardown of its own runs.
    run = textwrap.dedent(
        """
        import subprocess, sys, time
        import psutil
        from child_processes import ending_with_this_process
        command = [sys.executable, "-c", "import time; time.sleep(120)"]
        server = subprocess.Popen(ending_with_this_process(command))
        # setpriv asks for the signal before it executes the command: once the command
        # runs, the request is in place (killed earlier, this process would race it). Only
        # the command's own line shows that: setpriv's line, and this one's in the forked
        # child before setpriv runs, also hold "time.sleep(120)".
        deadline = time.monotonic() + 10
        while psutil.Process(server.pid).cmdline() != command:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        print(server.pid, flush=True)
        time.sleep(120)
        """
    )
    support = os.path.join(os.path.dirname(__file__), "support")
    env = {**os.environ, "PYTHONPATH": support + os.pathsep + os.environ.get("PYTHONPATH", "")}
    test_run = subprocess.Popen(
        [sys.executable, "-c", run], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert test_run.stdout is not None
        server = psutil.Process(int(test_run.stdout.readline()))
        assert server.is_running()
        test_run.send_signal(signal.SIGKILL)
        test_run.wait(timeout=10)
        # The kernel sends the server SIGTERM as its parent dies: it ends, bounded. It is not
        # this process's child, so it may stay a zombie until whoever adopted it reaps it.
        deadline = time.monotonic() + 10
        while _running(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(server)
    finally:
        test_run.kill()
        test_run.wait(timeout=10)
        test_run.stdout.close()  # type: ignore[union-attr]


def _running(process: psutil.Process) -> bool:
    """Whether ``process`` still runs (a zombie has ended: it only waits to be reaped)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
