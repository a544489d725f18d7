"""Named failure points for fault-injection tests. Unset (always, outside tests), they do
nothing.

SATCHEL_CRASH_AT=NAME          this process SIGKILLs itself at NAME
SATCHEL_KILL_AT=NAME=PIDFILE   at NAME, SIGKILL the process whose pid is in PIDFILE
                               (e.g. the registry, to have it die in the middle of a push)
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def point(name: str) -> None:
    if os.environ.get("SATCHEL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    target, _, pidfile = os.environ.get("SATCHEL_KILL_AT", "").partition("=")
    if target == name and pidfile:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(Path(pidfile).read_text()), signal.SIGKILL)
