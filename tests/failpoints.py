"""Failure points armed from the environment, for tests that run `satchel` in a subprocess
(tests/launch.py imports this first). Production code never reads these variables.

SATCHEL_CRASH_AT=NAME          the process SIGKILLs itself at NAME
SATCHEL_KILL_AT=NAME=PIDFILE   at NAME, SIGKILL the process whose pid is in PIDFILE
                               (e.g. the registry, to have it die in the middle of a push)
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from installer import faults


def _hook(name: str) -> None:
    if os.environ.get("SATCHEL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    target, _, pidfile = os.environ.get("SATCHEL_KILL_AT", "").partition("=")
    if target == name and pidfile:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(Path(pidfile).read_text()), signal.SIGKILL)


if os.environ.get("SATCHEL_CRASH_AT") or os.environ.get("SATCHEL_KILL_AT"):
    faults.arm(_hook)
