"""Child processes that die with Satchel. Linux's parent-death signal makes the kernel
SIGKILL a child (Compose, helm) the moment the Satchel process that started it dies, even by
kill -9: nothing it was doing can race the next run, which holds the lock alone."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn for subprocess: runs in the child between fork and exec."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
