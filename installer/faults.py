"""Named crash points for fault-injection tests: SATCHEL_CRASH_AT=NAME kills the process
with SIGKILL when it reaches that point. Unset (always, outside tests), it does nothing."""

from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    if os.environ.get("SATCHEL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
