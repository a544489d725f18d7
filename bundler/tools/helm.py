"""The `helm` binary: found on PATH (or $SATCHEL_HELM), run with a bounded time."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import EnvironmentProblem, SpecError


def helm_binary() -> str | None:
    return os.environ.get("SATCHEL_HELM") or shutil.which("helm")


def template(chart: Path, release: str = "satchel", timeout: float = 120) -> str:
    """Render a chart with its default values (no cluster needed)."""
    binary = helm_binary()
    if binary is None:
        raise EnvironmentProblem("helm is not on PATH")
    try:
        proc = subprocess.run([binary, "template", release, str(chart)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"helm template {chart} failed: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SpecError(f"helm template {chart} failed: {last}")
    return proc.stdout
