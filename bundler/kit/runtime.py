"""Where the running Satchel comes from: the kit (one file carrying Python, Compose, the
registry and helm) or an ordinary Python environment. Tools are looked up here first."""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any


def kit_dir() -> Path | None:
    """The kit's extracted payload, set by its launcher; None outside a kit. The variable
    counts only in the frozen program, so a stray value cannot redirect a venv install."""
    directory = os.environ.get("SATCHEL_KIT_DIR")
    return Path(directory) if directory and getattr(sys, "frozen", False) else None


def kit_file() -> Path | None:
    """The kit executable the customer runs (the file a self-upgrade replaces)."""
    path = os.environ.get("SATCHEL_KIT")
    return Path(path) if path and kit_dir() else None


def tool(name: str) -> Path | None:
    """A program the kit carries (docker-compose, helm, registry-rootfs.tar), if any."""
    directory = kit_dir()
    path = directory / "tools" / name if directory else None
    return path if path and path.exists() else None


def trusted_key_files() -> list[Path]:
    """Vendor public keys the kit was built to trust (`build-kit --trust`)."""
    directory = kit_dir()
    return sorted((directory / "trust").glob("*.pub")) if directory else []


@cache
def meta() -> dict[str, Any]:
    """kit.json of the running kit: its version, platform and the versions of what it carries."""
    directory = kit_dir()
    if directory is None:
        return {}
    return dict(json.loads((directory / "kit.json").read_text()))
