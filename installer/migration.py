"""Roots of the single-application layout (releases/, current, history, journal, config/,
secrets/ and reports/ at the top) become apps/NAME/ in place, the first time a command takes
the lock.

Crash-safe: the marker file `migrating` names the application before anything moves; every
step after it is a rename or rewrite that is skipped once done, so the next command finishes
a run that was killed halfway. The running containers are not touched: their Compose labels
still name the old paths, which the application keeps owning (App.owned_dirs)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bundler.oci.layout import fsync_dir, write_atomic

from . import faults

if TYPE_CHECKING:
    from .state import Host

MARKER = "migrating"
# `history` moves last: until it has moved, the top-level history is still the application's.
MOVED = ("releases", "current", "journal", "config", "secrets", "reports", "history")


def pending(host: Host) -> bool:
    top = host.path
    return (top / MARKER).exists() or (top / "releases").is_dir() or (top / "current").is_symlink()


def run(host: Host) -> str | None:
    """Finish or do the migration (the caller holds the lock); returns the application moved."""
    if not pending(host):
        return None
    marker = host.path / MARKER
    name = marker.read_text().strip() if marker.exists() else _legacy_name(host)
    if name is None:
        # Only empty or temporary release directories: nothing names the application.
        shutil.rmtree(host.path / "releases", ignore_errors=True)
        (host.path / "current").unlink(missing_ok=True)
        return None
    write_atomic(marker, name.encode())
    app = host.app(name)
    app.dir.mkdir(parents=True, exist_ok=True)
    for item in MOVED:
        src, dst = host.path / item, app.dir / item
        if (src.exists() or src.is_symlink()) and not (dst.exists() or dst.is_symlink()):
            os.replace(src, dst)
            faults.point("during-migration")
    fsync_dir(app.dir)
    fsync_dir(host.path)
    _move_env_files(host.path / "secrets", app.dir / "secrets", app.releases)
    host.record("migrated", app=name)
    marker.unlink()
    fsync_dir(host.path)
    return name


def _legacy_name(host: Host) -> str | None:
    """The application's name, from the current release, else from any release."""
    releases = host.path / "releases"
    current = host.path / "current"
    candidates = [current.resolve()] if current.is_symlink() else []
    candidates += sorted(p for p in releases.glob("[!.]*") if p.is_dir())
    for release in candidates:
        try:
            return str(json.loads((release / "release.json").read_text())["name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _move_env_files(old: Path, new: Path, releases: Path) -> None:
    """release.json names its settings file by absolute path: point it at the moved one."""
    for info_file in sorted(releases.glob("*/release.json")):
        doc = json.loads(info_file.read_text())
        env = doc.get("env_file")
        if isinstance(env, str) and Path(env).is_relative_to(old):
            doc["env_file"] = str(new / Path(env).relative_to(old))
            write_atomic(info_file, json.dumps(doc, indent=2, sort_keys=True).encode())

