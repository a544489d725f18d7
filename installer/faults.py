"""Named failure points for fault-injection tests. Production code marks each step with
point(NAME); nothing happens unless a test has armed a hook: tests/failpoints.py (kill -9 at
a point, in a subprocess) or the in-memory crash sweep (tests/test_state_machine.py)."""

from __future__ import annotations

from collections.abc import Callable

_hook: Callable[[str], None] | None = None


def arm(hook: Callable[[str], None] | None) -> None:
    """Call `hook(NAME)` at every failure point from now on (None disarms)."""
    global _hook
    _hook = hook


def point(name: str) -> None:
    if _hook is not None:
        _hook(name)
