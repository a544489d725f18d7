"""Zero-copy load into the managed registry: verified blobs reach CNCF Distribution's own
storage as hard links to the content store, with the repository links, manifest revisions and
tags the registry reads (its filesystem layout, documented in its storage package):

    v2/blobs/sha256/HE/HEX/data                          the bytes (here: a link to store/blobs/sha256/HEX)
    v2/repositories/REPO/_layers/sha256/HEX/link         "sha256:HEX": the blob belongs to REPO
    v2/repositories/REPO/_manifests/revisions/sha256/HEX/link
    v2/repositories/REPO/_manifests/tags/TAG/current/link
    v2/repositories/REPO/_manifests/tags/TAG/index/sha256/HEX/link

The registry keeps serving, reads these files on every request (no blob cache is configured),
and its garbage collection, a restart and the store's own retention all leave the other name
of each file in place. Nothing is sent over HTTP, so a layer shared between repositories is
one more link file, not one more upload. Pushing to an external --registry stays an upload."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from bundler.errors import RegistryError
from bundler.oci.digest import hex_of
from bundler.oci.layout import Layout, write_atomic
from bundler.oci.model import Descriptor
from bundler.oci.registry import Endpoint, RegistryClient

from .registry import ManagedRegistry


class RegistryStorage:
    """The managed registry's storage as the sink of a release's push (installer/push.py)."""

    def __init__(self, registry: ManagedRegistry, store: Layout) -> None:
        self.endpoint = Endpoint(registry.host)
        self.client = RegistryClient(self.endpoint)
        self.store = store
        self.v2 = registry.repositories.parent

    def _data(self, digest: str) -> Path:
        hex_ = hex_of(digest)
        return self.v2 / "blobs" / "sha256" / hex_[:2] / hex_ / "data"

    def _link(self, repo: str, *parts: str) -> Path:
        return self.v2 / "repositories" / repo / Path(*parts) / "link"

    def has_blob(self, repo: str, digest: str) -> bool:
        """The data and the repository's link, whole: a full disk can leave a link file empty
        (the registry then answers 500 for the blob), and writing it again repairs it."""
        link = self._link(repo, "_layers", "sha256", hex_of(digest))
        try:
            return self._data(digest).is_file() and link.read_bytes() == digest.encode()
        except OSError:
            return False

    def push_blob(self, repo: str, desc: Descriptor, src: BinaryIO) -> None:
        """A hard link to the store's file; a copy of `src` (the same bytes, hashed by the
        caller when they were at rest) only when the registry is on another filesystem."""
        if self._place(desc, lambda tmp: self._copy(src, tmp)):
            getattr(src, "skip", lambda n: None)(desc.size)      # the progress bar's count
        write_atomic(self._link(repo, "_layers", "sha256", hex_of(desc.digest)), desc.digest.encode())

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        """One more link file, when the data is there."""
        if not self._data(digest).is_file():
            return False
        write_atomic(self._link(repo, "_layers", "sha256", hex_of(digest)), digest.encode())
        return True

    def _place(self, desc: Descriptor, copy: Callable[[Path], None]) -> bool:
        """The blob's data file; True if it was linked (not read)."""
        data = self._data(desc.digest)
        if data.is_file():
            return True
        data.parent.mkdir(parents=True, exist_ok=True)
        tmp = data.with_name(f".data.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(self.store.path(desc.digest), tmp)
            linked = True
        except OSError:
            copy(tmp)
            linked = False
        tmp.replace(data)
        return linked

    @staticmethod
    def _copy(src: BinaryIO, dest: Path) -> None:
        with dest.open("wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())

    def push_manifest(self, repo: str, reference: str, desc: Descriptor, body: bytes) -> None:
        """The manifest's bytes as a blob and a revision of the repository; a tag points at it."""
        self._place(desc, lambda tmp: write_atomic(tmp, body))
        hex_ = hex_of(desc.digest)
        write_atomic(self._link(repo, "_manifests", "revisions", "sha256", hex_), desc.digest.encode())
        if not reference.startswith("sha256:"):
            tag = Path("_manifests", "tags", reference)
            write_atomic(self._link(repo, str(tag / "index" / "sha256" / hex_)), desc.digest.encode())
            write_atomic(self._link(repo, str(tag / "current")), desc.digest.encode())
            self._served(repo, reference, desc.digest)

    def _served(self, repo: str, tag: str, digest: str) -> None:
        """The registry answers for what was just written (it is up, and reads this layout)."""
        served, _ = self.client.get_manifest(repo, tag)
        if served.digest != digest:
            raise RegistryError(f"the local registry serves {repo}:{tag} as {served.digest}, not {digest}")
