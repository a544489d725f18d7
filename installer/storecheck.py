"""The content store at rest: `satchel store verify`, and repair from a bundle that carries
the damaged or missing blobs (a rollback's push re-hashes what it sends: push.VerifiedEnd).

A blob is damaged when its bytes no longer hash to its name (a disk error, a person's edit);
missing when a kept release needs it and the store has none. Either way the bundle that
brought it can bring it again: only those members are written, verified like any install."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bundler.lanes import LANES
from bundler.manifest import BundleManifest, parse_manifest
from bundler.oci.layout import Layout
from bundler.oci.model import Descriptor
from bundler.progress import QUIET, Reporter
from bundler.verify import BundleInput
from signing import trust
from signing.keys import VerifyKey

from . import gc
from .intake import StagingSink
from .state import Host
from .truststore import TrustStore


@dataclass
class Report:
    checked: int = 0
    damaged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def wanted(self) -> set[str]:
        return set(self.damaged) | set(self.missing)


def verify(host: Host, reporter: Reporter = QUIET) -> Report:
    """Every stored blob re-hashed; every blob a kept release needs looked for."""
    store, report = host.store, Report()
    blobs = [Descriptor("", f"sha256:{p.name}", p.stat().st_size)
             for p in sorted(store.blobs.glob("[!.]*"))] if store.blobs.is_dir() else []
    with reporter.bar(sum(d.size for d in blobs), "hashing the store") as tick:
        report.damaged = _damaged(store, blobs, tick)
    report.checked = len(blobs)
    report.missing = sorted(d for d in gc.needed_blobs(host) or () if not (store.blobs / d[7:]).exists())
    return report


def release_damage(store: Layout, manifest: BundleManifest) -> set[str]:
    """The blobs of one release that are missing or damaged (each one re-hashed)."""
    return set(_damaged(store, [Descriptor("", d, size) for d, size in manifest.all_blobs.items()]))


def _damaged(store: Layout, blobs: list[Descriptor], tick: Callable[[int], None] = lambda n: None) -> list[str]:
    """The digests of the blobs that are missing or damaged, in order, hashed on every core."""
    def check(desc: Descriptor) -> str | None:
        intact = store.intact(desc)
        tick(desc.size)
        return None if intact else desc.digest

    with ThreadPoolExecutor(LANES, thread_name_prefix="satchel-hash") as pool:
        return [d for d in pool.map(check, blobs) if d]


def repair(host: Host, bundle: Path, wanted: set[str], keys: list[VerifyKey], reporter: Reporter = QUIET) -> int:
    """Stream-verify `bundle` (trusted signature, every byte) and put back the members in
    `wanted`; returns how many were put back. Expiry is not judged: the blobs are named by
    releases this host already runs, and a digest is all it takes to know them."""
    store = TrustStore(host.trust)

    def authorize(manifest_bytes: bytes, signatures: bytes) -> BundleManifest:
        trust.verify_signatures(manifest_bytes, signatures, keys, store.threshold(), sorted(store.revoked()))
        return parse_manifest(manifest_bytes)

    staging = Path(tempfile.mkdtemp(dir=host.staging, prefix="repair-"))
    sink = StagingSink(host.store, staging, only={d.removeprefix("sha256:") for d in wanted})
    try:
        with BundleInput(bundle, keys) as source, reporter.bar(source.size, "verifying") as tick:
            source.read(authorize, sink, progress=tick)
        sink.promote()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(sink.staged)


def heal(host: Host, manifest: BundleManifest, bundle: Path, keys: list[VerifyKey], reporter: Reporter) -> int:
    """A re-install of a release this host runs: its blobs are re-hashed, and any damaged or
    missing one is put back from the bundle. Returns how many."""
    damaged = release_damage(host.store, manifest)
    if not damaged:
        return 0
    reporter.step(f"{len(damaged)} stored blob(s) of {manifest.name} {manifest.version} are damaged or missing: "
                  "putting them back from the bundle")
    return repair(host, bundle, damaged, keys, reporter)
