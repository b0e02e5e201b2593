"""Servers the tests start end with the test process, however it ends."""

from __future__ import annotations

import shutil
import sys


def ending_with_this_process(command: list[str]) -> list[str]:
    """``command`` run so that the kernel stops it when the process that started it dies.

    A test run killed by a timeout or a signal runs no fixture teardown, and its servers would
    keep their ports and cores. On Linux, util-linux's ``setpriv --pdeathsig`` asks for
    SIGTERM on the parent's death and then executes the command (the request survives the
    exec); elsewhere, or without setpriv, the command is left as it is.
    """
    setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "TERM", "--", *command]
