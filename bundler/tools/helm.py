"""The `helm` binary: $SATCHEL_HELM, the kit's own, or found on PATH; run with a bounded time."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import EnvironmentProblem, SpecError
from ..kit.runtime import tool
from .children import die_with_parent


def helm_binary() -> str | None:
    carried = tool("helm")
    return os.environ.get("SATCHEL_HELM") or (str(carried) if carried else None) or shutil.which("helm")


def run(args: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = helm_binary()
    if binary is None:
        raise EnvironmentProblem("helm is not on PATH (or set SATCHEL_HELM)")
    try:
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                              preexec_fn=die_with_parent)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"helm {args[0]} failed: {exc}") from None


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stderr.strip().splitlines() or ["no output"])[-1]


def template(chart: Path, release: str = "satchel", timeout: float = 120) -> str:
    """Render a chart with its default values (no cluster needed)."""
    proc = run(["template", release, str(chart)], timeout)
    if proc.returncode != 0:
        raise SpecError(f"helm template {chart} failed: {last_line(proc)}")
    return proc.stdout
