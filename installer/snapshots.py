"""Snapshots of an application's data volumes, kept with the release whose data they hold.

A snapshot is taken before every switch, of the release that is about to stop: each declared
volume (bundler/lifecycle.py) streamed by the target as a tar, zstd-compressed and hashed as it
is written, under apps/NAME/snapshots/ID/ (root-only, like the rest of apps/). The directory
is written under a temporary name and renamed whole: a snapshot either exists complete or not
at all. Restoring checks each file's hash first, then replaces the volume's contents."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from bundler.errors import EnvironmentProblem
from bundler.lifecycle import DataVolume
from bundler.manifest import BundleManifest
from bundler.oci.layout import fsync_dir, write_atomic
from bundler.progress import Reporter
from signing.grammar import utc_stamp

from . import faults
from .options import space_margin
from .releases import Release
from .state import App
from .targets import data_target, for_release

CHUNK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    id: str
    release: str                     # the release whose data it holds
    taken: str
    reason: str
    volumes: tuple[dict[str, Any], ...]   # volume (declared), engine (its attrs), file, size, sha256
    path: Path

    @property
    def size(self) -> int:
        return sum(int(v["size"]) for v in self.volumes)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "release": self.release, "taken": self.taken, "reason": self.reason,
                "size": self.size, "volumes": [v["volume"] for v in self.volumes]}


def root(app: App) -> Path:
    return app.dir / "snapshots"


def declared(*manifests: BundleManifest) -> tuple[DataVolume, ...]:
    """The data volumes the releases declare, each once (the newer release's word first)."""
    out: dict[str, DataVolume] = {}
    for manifest in manifests:
        for volume in manifest.lifecycle.data:
            out.setdefault(volume.volume, volume)
    return tuple(out.values())


def _existing(owner: Release, volumes: tuple[DataVolume, ...]) -> list[tuple[DataVolume, dict[str, Any]]]:
    target = data_target(owner)
    return [(v, attrs) for v in volumes if target and (attrs := target.data_volume(owner, v.volume)) is not None]


def check_room(app: App, owner: Release, volumes: tuple[DataVolume, ...]) -> None:
    """EnvironmentProblem (exit 4) unless a snapshot of the volumes fits beside the margin
    (judged by the volumes' uncompressed size: the compressed copy is rarely larger)."""
    _check_room(app, owner, _existing(owner, volumes))


def _check_room(app: App, owner: Release, found: list[tuple[DataVolume, dict[str, Any]]]) -> None:
    target = data_target(owner)
    if not found or target is None:
        return
    need = sum(max(target.volume_size(owner, attrs), 0) for _, attrs in found)
    free, margin = shutil.disk_usage(app.host.path).free, space_margin()
    if need + margin > free:
        raise EnvironmentProblem(f"a snapshot of {', '.join(v.volume for v, _ in found)} needs up to "
                                 f"{need >> 20} MiB and {margin >> 20} MiB to spare, but {app.host.path} has "
                                 f"{free >> 20} MiB free; free some space and try again")


def take(app: App, owner: Release, volumes: tuple[DataVolume, ...], reason: str, reporter: Reporter) -> Snapshot | None:
    """Snapshot the owner's declared volumes that exist (None if none does). Free space is checked
    before anything is stopped; then each volume is made consistent as declared, and copied."""
    found, target = _existing(owner, volumes), data_target(owner)
    if not found or target is None:
        return None
    _check_room(app, owner, found)
    for volume, _ in found:
        target.quiesce(owner, volume)
    snap_id = _new_id(app, owner)
    tmp = root(app) / f".{snap_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    records = []
    for volume, attrs in found:
        reporter.step(f"snapshot of volume {volume.volume} ({attrs['Name']})")
        with target.export_volume(owner, attrs) as chunks:
            size, digest = write_compressed(tmp / f"{volume.volume}.tar.zst", chunks)
        faults.point("during-snapshot")
        engine = {k: attrs.get(k) for k in ("Name", "Driver", "Options", "Labels")}
        records.append({"volume": volume.volume, "engine": engine, "file": f"{volume.volume}.tar.zst",
                        "size": size, "sha256": digest})
    meta = {"id": snap_id, "release": owner.path.name, "taken": utc_stamp(), "reason": reason, "volumes": records}
    write_atomic(tmp / "snapshot.json", json.dumps(meta, indent=1).encode(), 0o600)
    os.replace(tmp, root(app) / snap_id)
    fsync_dir(root(app))
    return load(app, snap_id)


def _new_id(app: App, owner: Release) -> str:
    """TIME-RELEASE (sorts by time), with a counter when one second holds two."""
    base = f"{utc_stamp().replace('-', '').replace(':', '')}-{owner.path.name}"
    n = 0
    while (root(app) / (f"{base}.{n}" if n else base)).exists():
        n += 1
    return f"{base}.{n}" if n else base


def write_compressed(path: Path, chunks: Iterator[bytes]) -> tuple[int, str]:
    """The tar stream, compressed into path (0600) and fsynced: (compressed size, its sha256)."""
    digest = hashlib.sha256()
    compressor = zstandard.ZstdCompressor(level=3, threads=-1).compressobj()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:

        def put(data: bytes) -> None:
            digest.update(data)
            fh.write(data)

        for chunk in chunks:
            put(compressor.compress(chunk))
        put(compressor.flush())
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell(), digest.hexdigest()


def restore(app: App, snap: Snapshot, running: Release | None, reporter: Reporter) -> None:
    """Put the snapshot's data back. The release `running` (if any) is stopped first: a volume
    in use cannot be replaced. The caller starts what should run afterwards."""
    for record in snap.volumes:                  # every file intact before any volume changes
        _check(snap.path / record["file"], record)
    if running is not None:
        for_release(running).stop(running)
    owner = _owner(app, snap, running)
    target = data_target(owner)
    if target is None:
        raise EnvironmentProblem(f"the {owner.info.target} target keeps no volumes to restore")
    for record in snap.volumes:
        reporter.step(f"restoring volume {record['volume']} from snapshot {snap.id}")
        with (snap.path / record["file"]).open("rb") as fh:
            target.import_volume(owner, record["engine"], read_compressed(fh))
        faults.point("during-restore")


def _owner(app: App, snap: Snapshot, running: Release | None) -> Release:
    """A release to mount the volumes through: the snapshot's own if kept, else the running one."""
    from . import releases

    if releases.exists(app, snap.release):
        return releases.load(app, snap.release)
    if running is None:
        raise EnvironmentProblem(f"snapshot {snap.id} belongs to release {snap.release}, which is no longer kept")
    return running


def _check(path: Path, record: dict[str, Any]) -> None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read snapshot file {path}: {exc.strerror}") from None
    if digest.hexdigest() != record["sha256"]:
        raise EnvironmentProblem(f"snapshot file {path} is damaged (its sha256 differs from the one recorded)")


def read_compressed(fh: BinaryIO) -> Iterator[bytes]:
    with zstandard.ZstdDecompressor().stream_reader(fh) as z:
        while chunk := z.read(CHUNK):
            yield chunk


def load(app: App, snap_id: str) -> Snapshot:
    path = root(app) / snap_id
    try:
        meta = json.loads((path / "snapshot.json").read_text())
    except (OSError, ValueError):
        raise EnvironmentProblem(f"there is no snapshot {snap_id} of {app.name} (satchel snapshots lists them)") \
            from None
    return Snapshot(meta["id"], meta["release"], meta["taken"], meta["reason"], tuple(meta["volumes"]), path)


def listed(app: App) -> list[Snapshot]:
    """Every complete snapshot, oldest first."""
    names = sorted(p.name for p in root(app).iterdir() if not p.name.startswith(".")) if root(app).is_dir() else []
    return [load(app, name) for name in names]


def latest(app: App, release: str) -> Snapshot | None:
    """The newest snapshot of the data of `release`."""
    return next((s for s in reversed(listed(app)) if s.release == release), None)


def retain(app: App, kept: set[str]) -> None:
    """Snapshots go with their releases: those of releases no longer kept are removed, and
    leftovers of interrupted snapshots."""
    for path in root(app).iterdir() if root(app).is_dir() else ():
        if path.name.startswith(".") or load(app, path.name).release not in kept:
            shutil.rmtree(path)
