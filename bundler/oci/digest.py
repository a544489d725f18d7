"""sha256 digests, and a hashing copy that never holds a whole blob in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO, Protocol

from signing.grammar import DIGEST

from ..errors import BundleError

CHUNK = 1 << 20


def is_digest(value: object) -> bool:
    return isinstance(value, str) and DIGEST.fullmatch(value) is not None


def check_digest(value: object, what: str = "digest") -> str:
    if not is_digest(value):
        raise BundleError(f"{what} {value!r} is not a sha256 digest")
    assert isinstance(value, str)
    return value


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    return digest.split(":", 1)[1]


class Writable(Protocol):
    def write(self, data: bytes | memoryview, /) -> int | None: ...


def copy_hashed(src: BinaryIO, dst: Writable | None, limit: int | None = None) -> tuple[str, int]:
    """Copy src to dst (or just read it), returning (digest, size).

    With `limit`, reads at most limit+1 bytes so an over-long stream is caught without
    reading it all.
    """
    h = hashlib.sha256()
    size = 0
    while True:
        want = CHUNK if limit is None else min(CHUNK, limit + 1 - size)
        if want <= 0:
            break
        chunk = src.read(want)
        if not chunk:
            break
        h.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)
    return "sha256:" + h.hexdigest(), size


def file_digest(path: Path) -> str:
    """sha256:HEX of a file, read in chunks."""
    with path.open("rb") as fh:
        return copy_hashed(fh, None)[0]
