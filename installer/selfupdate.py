"""Satchel upgrades itself from a bundle. A bundle may carry a kit (`installer:` in
satchel.yaml, pinned by the signed manifest like any member). Once the release it came with
is healthy, that kit takes the place of the running kit file (temp name, fsync, rename); the
old file is kept under ROOT/kits/ and put back by `satchel rollback` from that release.

Only a kit replaces itself: Satchel running from a Python environment leaves it alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bundler.errors import BundleError
from bundler.kit import runtime
from bundler.manifest import BundleManifest
from bundler.oci.digest import file_digest, hex_of
from bundler.oci.layout import fsync_dir
from bundler.progress import Reporter
from signing.grammar import version_key

from .state import App


def check(manifest: BundleManifest, allow_downgrade: bool) -> None:
    """Before any change: refuse a kit for another platform, or older than the running one."""
    new, running = manifest.installer, runtime.meta()
    if new is None or not running:
        return
    if new.platform != running["platform"]:
        raise BundleError(f"the bundle carries a Satchel kit for {new.platform}; this host runs "
                          f"{running['platform']}")
    if version_key(new.version) < version_key(running["version"]) and not allow_downgrade:
        raise BundleError(f"the bundle carries Satchel kit {new.version}, older than this kit "
                          f"({running['version']}); pass --allow-downgrade to install it anyway")


def apply(app: App, manifest: BundleManifest, reporter: Reporter) -> None:
    """Put the bundle's kit in place of the running one (idempotent: same bytes, no change)."""
    new, target = manifest.installer, runtime.kit_file()
    if new is None:
        return
    if target is None:
        reporter.step(f"the bundle carries Satchel kit {new.version}; this Satchel is not a kit, so it stays")
        return
    if f"sha256:{hex_of(file_digest(target))}" == new.digest:
        return
    kept = _keep(app, target)
    _put(app.store.path(new.digest), target)
    app.record("kit-replaced", version=new.version, previous=runtime.meta()["version"], release=manifest.version,
                kept=str(kept))
    reporter.step(f"Satchel kit {target} upgraded to {new.version} (the previous one is kept for satchel rollback)")


def restore(app: App, leaving: str, reporter: Reporter) -> None:
    """After a rollback away from release `leaving`: the kit it brought gives way to the one
    it replaced."""
    target = runtime.kit_file()
    replaced = [e for e in app.history() if e.get("event") == "kit-replaced" and e.get("release") == leaving]
    if target is None or not replaced or not Path(replaced[-1]["kept"]).exists():
        return
    _put(Path(replaced[-1]["kept"]), target)
    app.record("kit-restored", version=replaced[-1]["previous"], release=leaving)
    reporter.step(f"Satchel kit {target} restored to {replaced[-1]['previous']}")


def _keep(app: App, kit: Path) -> Path:
    kept = app.host.path / "kits" / hex_of(file_digest(kit))[:16] / kit.name
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        _put(kit, kept)
    return kept


def _put(source: Path, target: Path) -> None:
    """Copy source over target atomically: a temp name beside it, fsync, chmod, rename."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with source.open("rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    tmp.chmod(0o755)
    os.replace(tmp, target)
    fsync_dir(target.parent)
