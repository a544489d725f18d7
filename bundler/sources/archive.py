"""Images read from a `docker save` archive (legacy layout, or OCI layout inside the tar)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, cast

from ..errors import BundleError, SpecError
from ..oci.digest import copy_hashed
from ..oci.model import MAX_MANIFEST_BYTES, OCI_LAYER, Descriptor, parse_json
from ..oci.refs import Reference
from .base import SynthesizedImage, check_manifest
from .layout import pick


class ArchiveSource:
    def __init__(self, path: Path, ref: Reference, description: str | None = None) -> None:
        self.ref = ref
        self.description = description or f"archive {path}"
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
            # Names as written by docker save, or by tar -C DIR . ("./index.json").
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers()}
        except (OSError, tarfile.TarError) as exc:
            raise SpecError(f"{path} is not a readable docker save archive: {exc}") from None
        self._legacy: SynthesizedImage | None = None
        if not {"index.json", "oci-layout"} <= set(self.members):
            self._legacy = self._synthesize()

    def _member(self, name: str) -> BinaryIO:
        member = self.members.get(name)
        fh = self.tar.extractfile(member) if member else None
        if fh is None:
            raise BundleError(f"{self.description}: member {name} is missing")
        return cast(BinaryIO, fh)

    def _read(self, name: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        with self._member(name) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise BundleError(f"{self.description}: {name} is too large")
        return data

    def _synthesize(self) -> SynthesizedImage:
        if "manifest.json" not in self.members:
            raise SpecError(f"{self.description} is not a docker save archive (no manifest.json)")
        entries: Any = json.loads(self._read("manifest.json"))
        if not isinstance(entries, list) or not entries:
            raise SpecError(f"{self.description}: manifest.json lists no images")
        by_desc = {Descriptor("application/vnd.oci.image.manifest.v1+json", f"sha256:{i:064x}", 0): e
                   for i, e in enumerate(entries)}
        names = {d: list(e.get("RepoTags") or []) for d, e in by_desc.items()}
        entry = by_desc[pick(list(by_desc), self.ref, self.description, names)]
        config = self._read(entry["Config"])
        layers: list[tuple[Descriptor, Callable[[], BinaryIO]]] = []
        for name in entry.get("Layers") or []:
            with self._member(name) as fh:
                digest, size = copy_hashed(fh, None)
            layers.append((Descriptor(OCI_LAYER, digest, size), partial(self._member, name)))
        return SynthesizedImage(self.description, config, layers)

    def root(self) -> tuple[Descriptor, bytes]:
        if self._legacy is not None:
            return self._legacy.root()
        doc = parse_json(self._read("index.json"), f"{self.description}: index.json")
        manifests = [Descriptor.from_json(d, self.description) for d in doc.get("manifests") or []]
        desc = pick(manifests, self.ref, self.description)
        return desc, self.manifest(desc)

    def manifest(self, desc: Descriptor) -> bytes:
        if self._legacy is not None:
            return self._legacy.manifest(desc)
        return check_manifest(desc, self._read(f"blobs/sha256/{desc.digest[7:]}"), self.description)

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]:
        if self._legacy is not None:
            return self._legacy.open_blob(desc)
        return self._member(f"blobs/sha256/{desc.digest[7:]}")

    def close(self) -> None:
        self.tar.close()
