"""What this host holds and runs: `satchel status` and `satchel inventory`."""

from __future__ import annotations

from typing import Any

from bundler.delta import inventory_json

from . import releases
from .state import Root
from .targets import for_release


def status(root: Root) -> dict[str, Any]:
    """The current release, its services as its target reports them, the kept releases and
    any interrupted operation."""
    current = root.current()
    info: dict[str, Any] = {"root": str(root.path), "current": current,
                            "releases": releases.installed_versions(root), "pending": root.journal(),
                            "services": []}
    if current and releases.exists(root, current):
        release = releases.load(root, current)
        info.update(name=release.info.name, project=release.project, registry=release.info.registry,
                    services=for_release(release).services(release))
    return info


def inventory(root: Root) -> dict[str, Any]:
    """The blobs and healthy releases this host holds, for the vendor's `build --delta-from`."""
    blobs = {f"sha256:{p.name}": p.stat().st_size for p in root.store.blobs.glob("[!.]*")}
    kept = [releases.load(root, v) for v in releases.installed_versions(root)]
    return inventory_json(blobs, [(r.info.name, r.version) for r in kept])
