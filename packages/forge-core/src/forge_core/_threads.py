"""Blocking local work (in-process generation, embeddings) awaited from an event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["in_thread"]

_T = TypeVar("_T")


def in_thread(work: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
    """Run ``work(*args)`` on a thread of its own; the future resolves on the running loop.

    A thread per call rather than a pool: local calls spend most of their time blocked (waiting
    for a model instance, or in llama.cpp with the GIL released), and a bounded pool would let
    requests queued for one busy model hold every thread while another model sits idle. The
    threads are not daemons, so the interpreter waits for a generation to finish (it is bounded
    by ``max_tokens`` and the deadline) instead of freeing the model under it. Cancelling the
    future does not stop the thread; callers that need that pass it a flag.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = work(*args)
        except BaseException as exc:
            outcome: tuple[_T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        # RuntimeError: the loop closed while this ran, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="forge-local", daemon=False).start()
    return done
