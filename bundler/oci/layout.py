"""An OCI image layout directory used as a content-addressed blob store.

Blobs are written to a temporary name inside the layout, hashed while written, fsynced
and renamed into `blobs/sha256/<hex>` only when size and digest match. A crash leaves at
most a stray temporary file, never a wrong blob under a digest name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import BundleError, EnvironmentProblem
from .digest import copy_hashed, hex_of, is_digest
from .model import MAX_MANIFEST_BYTES, Descriptor, parse_json

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
REF_ANNOTATION = "org.opencontainers.image.ref.name"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a small file: temp name in the same directory, fsync, rename, fsync the dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


class Layout:
    """`durable=False` skips fsync: right for a cache whose every blob is re-hashed when
    used, wrong for a store that must survive a power cut."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.durable = durable

    @classmethod
    def create(cls, root: Path, durable: bool = True) -> Layout:
        layout = cls(root, durable)
        layout.blobs.mkdir(parents=True, exist_ok=True)
        if not (root / "oci-layout").exists():
            write_atomic(root / "oci-layout", OCI_LAYOUT)
        return layout

    @classmethod
    def open(cls, root: Path) -> Layout:
        if not (root / "oci-layout").is_file() or not (root / "index.json").is_file():
            raise BundleError(f"{root} is not an OCI image layout (no oci-layout or index.json)")
        return cls(root)

    def path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise BundleError(f"{digest!r} is not a sha256 digest")
        return self.blobs / hex_of(digest)

    def has(self, desc: Descriptor) -> bool:
        try:
            return self.path(desc.digest).stat().st_size == desc.size
        except FileNotFoundError:
            return False

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise BundleError(f"blob {digest} is missing from {self.root}") from None

    def intact(self, desc: Descriptor) -> bool:
        """The blob is here, of its size, and hashes to its name (reads it whole)."""
        try:
            with self.path(desc.digest).open("rb") as fh:
                return copy_hashed(fh, None) == (desc.digest, desc.size)
        except FileNotFoundError:
            return False

    def read_small(self, desc: Descriptor, limit: int) -> bytes:
        if desc.size > limit:
            raise BundleError(f"{desc.digest} is {desc.size} bytes, more than the {limit} allowed")
        with self.open_blob(desc.digest) as fh:
            data = fh.read(limit + 1)
        if len(data) != desc.size or Descriptor.for_bytes(desc.media_type, data).digest != desc.digest:
            raise BundleError(f"blob {desc.digest} in {self.root} does not match its digest")
        return data

    @contextlib.contextmanager
    def _temp(self) -> Iterator[tuple[BinaryIO, Path]]:
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.blobs, prefix=".ingest-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh, tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def ingest(self, src: BinaryIO, expected: Descriptor | None = None, what: str = "blob") -> Descriptor:
        """Stream src into the store; verify against `expected` when given."""
        try:
            with self._temp() as (fh, tmp):
                digest, size = copy_hashed(src, fh, None if expected is None else expected.size)
                if expected is not None and (size, digest) != (expected.size, expected.digest):
                    raise BundleError(f"{what} {expected.digest}: received {size} bytes with digest "
                                      f"{digest}, expected {expected.size} bytes")
                if self.durable:
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.blobs / hex_of(digest))
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write to {self.root}: {exc.strerror}") from None
        media_type = expected.media_type if expected else "application/octet-stream"
        return Descriptor(media_type, digest, size)

    def put_bytes(self, media_type: str, data: bytes) -> Descriptor:
        desc = Descriptor.for_bytes(media_type, data)
        if not self.has(desc):
            write_atomic(self.path(desc.digest), data)
        return desc

    def index(self) -> list[Descriptor]:
        try:
            body = (self.root / "index.json").read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read {self.root}/index.json: {exc.strerror}") from None
        manifests = parse_json(body, f"{self.root}/index.json").get("manifests") or []
        return [Descriptor.from_json(d, f"{self.root}/index.json") for d in manifests]


class LayoutEnd:
    """A layout as either end of a copy (copy.py): manifests and blobs by descriptor."""

    def __init__(self, store: Layout, description: str) -> None:
        self.store, self.description = store, description

    def manifest(self, desc: Descriptor) -> bytes:
        return self.store.read_small(desc, MAX_MANIFEST_BYTES)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.store.open_blob(desc.digest)

    def has_blob(self, desc: Descriptor) -> bool:
        return self.store.has(desc)

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        self.store.ingest(stream, desc, f"{self.description}: blob")

    def put_manifest(self, desc: Descriptor, body: bytes) -> None:
        if self.store.put_bytes(desc.media_type, body).digest != desc.digest:
            raise BundleError(f"{self.description}: manifest {desc.digest} does not match its digest")
