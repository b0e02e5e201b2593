"""What this process holds, counted for real: descriptors, sockets, threads, children, loops.

For the lifecycle tests: a count taken before some work and again after it must be equal.
Counts come from the kernel (``/proc/self/fd``, psutil's view of the process's sockets and
children) and the interpreter (``threading.enumerate``, the garbage collector), never from
forge's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from dataclasses import dataclass

import psutil

__all__ = ["Held", "client_sockets", "closed_loops_alive", "open_fds"]


def client_sockets(port: int) -> int:
    """This process's open TCP connections to ``port`` on some host (the client side).

    A socket the server has closed (CLOSE_WAIT) is not counted: the port may have belonged to
    an earlier test's server, whose unclosed client still waits for the garbage collector.
    """
    return sum(
        1
        for connection in psutil.Process().net_connections("tcp")
        if connection.raddr
        and connection.raddr.port == port
        and connection.status != psutil.CONN_CLOSE_WAIT
    )


def open_fds(*serving: int) -> int:
    """Descriptors open in this process, less the server side of connections to ``serving``
    ports: an in-process test server closes those when its own thread notices the client
    left, so they would make a count taken right after the client closed depend on timing.
    """
    # The server's sockets first, then the descriptors: one that closes in between is in
    # neither set, so it is not counted either way.
    servers = {
        connection.fd
        for connection in psutil.Process().net_connections("tcp")
        if connection.laddr and connection.laddr.port in serving and connection.raddr
    }
    return len(set(os.listdir("/proc/self/fd")) - {str(fd) for fd in servers})


def closed_loops_alive() -> int:
    """Event loops that are closed but still in memory (after a full collection)."""
    gc.collect()
    return sum(
        1
        for thing in gc.get_objects()
        if isinstance(thing, asyncio.AbstractEventLoop) and thing.is_closed()
    )


@dataclass(frozen=True)
class Held:
    """Descriptors, thread names and child processes at one moment (`now`)."""

    fds: int
    threads: tuple[str, ...]
    children: tuple[int, ...]

    @classmethod
    def now(cls, *serving: int) -> Held:
        """The current counts (``serving``: ports of in-process servers, as for `open_fds`),
        after a full collection: garbage of earlier tests closing its sockets meanwhile would
        make two counts differ for nothing this test did."""
        gc.collect()
        return cls(
            fds=open_fds(*serving),
            threads=tuple(sorted(thread.name for thread in threading.enumerate())),
            children=tuple(sorted(child.pid for child in psutil.Process().children(True))),
        )
