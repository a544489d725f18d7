"""Garbage collection for the whole host, after retention or a removal: every blob of the
content store and every manifest and blob of the managed registry that no release kept by
any application needs is deleted. Shared layers stay as long as one release needs them."""

from __future__ import annotations

from dataclasses import dataclass

from bundler.errors import EnvironmentProblem
from bundler.oci.layout import fsync_dir
from bundler.progress import QUIET, Reporter

from . import releases
from .state import Host
from .tools.registry import ManagedRegistry


@dataclass(frozen=True)
class Collected:
    store_blobs: int = 0
    store_bytes: int = 0
    registry_manifests: int = 0


def needed_blobs(host: Host) -> set[str] | None:
    """Every blob a release on disk needs, for every application; None when a release
    cannot be read (then nothing is collected rather than something it needs)."""
    needed: set[str] = set()
    for app in host.apps():
        for release_dir in app.releases.glob("[!.]*"):
            try:
                needed |= set(releases.load(app, release_dir.name).manifest().all_blobs)
            except (OSError, EnvironmentProblem, ValueError):
                return None
    return needed


def collect(host: Host, reporter: Reporter = QUIET) -> Collected:
    needed = needed_blobs(host)
    if needed is None:
        return Collected()
    blobs, freed = 0, 0
    store = host.store
    if store.blobs.is_dir():
        for blob in store.blobs.glob("[!.]*"):
            if f"sha256:{blob.name}" not in needed:
                freed += blob.stat().st_size
                blob.unlink()
                blobs += 1
        fsync_dir(store.blobs)
    try:
        manifests = ManagedRegistry(host.registry_dir).collect_garbage(needed)
    except EnvironmentProblem as exc:
        # The deploy it follows has succeeded: a registry left uncleaned must not undo that.
        reporter.warn(f"the local registry was not cleaned up: {exc}")
        return Collected(blobs, freed)
    return Collected(blobs, freed, manifests)
