"""Release directories: written completely under a temporary name, then renamed; kept or
collected by retention; read back for status, rollback and retention."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.format import MANIFEST, SIGNATURES, BundleManifest, parse_manifest
from bundler.oci.layout import fsync_dir, write_atomic

from . import faults
from .state import Root


@dataclass(frozen=True)
class Release:
    path: Path
    info: dict[str, Any]              # release.json: name, version, project, registry, compose

    @property
    def version(self) -> str:
        return str(self.info["version"])

    @property
    def project(self) -> str:
        return str(self.info["project"])

    @property
    def compose(self) -> list[str]:
        return list(self.info["compose"])

    def manifest(self) -> BundleManifest:
        return parse_manifest((self.path / MANIFEST).read_bytes())


def load(root: Root, version: str) -> Release:
    path = root.releases / version
    return Release(path, json.loads((path / "release.json").read_text()))


def exists(root: Root, version: str) -> bool:
    return (root.releases / version / "release.json").is_file()


def staging_dir(root: Root, version: str) -> Path:
    """A fresh temporary directory next to releases/VERSION."""
    root.releases.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root.releases, prefix=f".tmp-{version}-"))


def write_metadata(tmp: Path, manifest_bytes: bytes, signatures: bytes, info: dict[str, Any]) -> None:
    write_atomic(tmp / MANIFEST, manifest_bytes)
    write_atomic(tmp / SIGNATURES, signatures)
    write_atomic(tmp / "release.json", json.dumps(info, indent=2, sort_keys=True).encode())


def commit(root: Root, tmp: Path, version: str) -> Release:
    """Rename the complete temporary directory to releases/VERSION (replacing an old copy)."""
    final = root.releases / version
    for sub in [p for p in tmp.rglob("*") if p.is_dir()] + [tmp]:
        fsync_dir(sub)
    if final.exists():
        trash = root.releases / f".trash-{version}-{os.getpid()}"
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(root.releases)
    return load(root, version)


def clean_leftovers(root: Root) -> None:
    """Temporary and trash directories a killed run left behind."""
    if root.releases.is_dir():
        for p in root.releases.iterdir():
            if p.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(p, ignore_errors=True)
    if root.staging.is_dir():
        for p in root.staging.iterdir():
            shutil.rmtree(p, ignore_errors=True)


def installed_versions(root: Root) -> list[str]:
    """Releases on disk that ran healthy at some point, most recently current first.
    A release that never passed its health check is not a rollback target."""
    on_disk = {p.name for p in root.releases.glob("[!.]*")}
    order: list[str] = []
    for entry in reversed(root.history()):
        version = entry.get("version")
        if entry.get("event") in ("installed", "rolled-back", "configured") and version in on_disk \
                and version not in order:
            order.append(str(version))
    return order


def previous_version(root: Root) -> str | None:
    current = root.current()
    return next((v for v in installed_versions(root) if v != current), None)


def retain(root: Root, keep: int) -> list[str]:
    """Keep the newest `keep` releases (always current and the one before it); remove the
    rest and every stored blob no kept release needs. Returns removed versions."""
    versions = installed_versions(root)
    protected = {root.current(), previous_version(root)}
    kept = [v for v in versions if v in protected][:2]
    kept += [v for v in versions if v not in kept][: max(0, keep - len(kept))]
    removed = sorted(p.name for p in root.releases.glob("[!.]*") if p.name not in kept)
    for version in removed:
        shutil.rmtree(root.releases / version, ignore_errors=True)
        faults.point("during-retention")
    needed: set[str] = set()
    for version in kept:
        with contextlib.suppress(FileNotFoundError, ValueError):
            needed |= set(load(root, version).manifest().all_blobs)
    store = root.store
    for blob in store.blobs.glob("[!.]*"):
        if f"sha256:{blob.name}" not in needed:
            blob.unlink()
    fsync_dir(store.blobs)
    return removed
