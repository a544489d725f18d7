"""The Satchel bundle, format v1: the only module that knows its layout.

A bundle is one zstd frame holding one tar stream (see docs/FORMAT.md):

    manifest.json     canonical JSON; pins every payload member by path, size and sha256
    signatures.json   detached signatures over the exact bytes of manifest.json
    oci-layout        \
    index.json         > an OCI image layout, members in the manifest's order
    blobs/sha256/...  /

The writer (vendor) and the streaming reader (verify, install) both live here; the manifest's
model and parser are in manifest.py. The reader
trusts nothing before the signature check, reads nothing the manifest did not announce,
and never holds more than one chunk of a member in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from signing.errors import UnsignedError

from . import tarstream
from .errors import BundleError
from .lanes import Lanes, Sink
from .manifest import BundleManifest, Member, is_member_name
from .oci.digest import CHUNK, Writable
from .zstdframe import decompressing_reader

MANIFEST = "manifest.json"
SIGNATURES = "signatures.json"


@dataclass(frozen=True)
class Limits:
    max_manifest: int = 16 << 20
    max_signatures: int = 64 << 10
    max_window: int = 1 << 27          # zstd's default decoder limit (windowLog 27)
    max_unpacked: int = 16 << 40


# -- writing ------------------------------------------------------------------------

def write_bundle(out: BinaryIO, manifest: bytes, signatures: bytes, members: Sequence[Member],
                 open_member: Callable[[Member], BinaryIO], *, level: int = 3, threads: int = 1,
                 progress: Callable[[int], None] | None = None) -> None:
    """Write the bundle stream. Member bytes are hashed on the way and must match.

    zstd output is identical for every `threads` >= 1 (but differs from threads=0), so the
    writer always uses the multi-threaded mode and bundles stay reproducible on any machine.
    """
    compressor = zstandard.ZstdCompressor(level=level, threads=max(1, threads), write_checksum=True)
    with compressor.stream_writer(out, closefd=False) as zout:
        for name, data in ((MANIFEST, manifest), (SIGNATURES, signatures)):
            zout.write(tarstream.header(name, len(data)) + data + b"\0" * tarstream.padding(len(data)))
        for member in members:
            zout.write(tarstream.header(member.path, member.size))
            h, size = hashlib.sha256(), 0
            with open_member(member) as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    zout.write(chunk)
                    if progress:
                        progress(len(chunk))
            if (size, h.hexdigest()) != (member.size, member.sha256):
                raise BundleError(f"{member.path} changed while it was written (cache corrupted?)")
            zout.write(b"\0" * tarstream.padding(size))
        zout.write(tarstream.END)


# -- reading ------------------------------------------------------------------------

class _Discard:
    def begin(self, member: Member) -> None:
        return None

    def commit(self, member: Member, written: Writable) -> None:
        pass


Authorize = Callable[[bytes, bytes], BundleManifest]


class _Stream:
    """Exact reads from the decompressed stream, with zstd errors turned into BundleErrors."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def read(self, n: int, what: str) -> bytes:
        try:
            first = self.stream.read(n)
        except zstandard.ZstdError as exc:
            raise BundleError(f"corrupt compressed data in {what}: {exc}") from None
        if len(first) == n:
            return first
        out = bytearray(first)
        while len(out) < n:
            try:
                chunk = self.stream.read(n - len(out))
            except zstandard.ZstdError as exc:
                raise BundleError(f"corrupt compressed data in {what}: {exc}") from None
            if not chunk:
                raise BundleError(f"the bundle is truncated: it ends inside {what}")
            out += chunk
        return bytes(out)

    def readinto(self, buf: bytearray, n: int, what: str) -> None:
        """Exactly n bytes into buf[:n]."""
        with memoryview(buf) as view:
            got = 0
            while got < n:
                try:
                    k = self.stream.readinto(view[got:n])  # type: ignore[attr-defined]
                except zstandard.ZstdError as exc:
                    raise BundleError(f"corrupt compressed data in {what}: {exc}") from None
                if not k:
                    raise BundleError(f"the bundle is truncated: it ends inside {what}")
                got += k


def _explain(block: bytes, expected: Member | None, known: dict[str, Member], seen: set[str]) -> str:
    if block == b"\0" * tarstream.BLOCK:
        return f"member {expected.path} is missing (the archive ends early)" if expected else "empty header"
    head = tarstream.describe(block)
    name = head.name
    if head.kind != "regular file":
        return f"member {name!r} is a {head.kind}; only regular files are allowed"
    if name.startswith("/") or ".." in name.split("/") or not (is_member_name(name) or name in (
            MANIFEST, SIGNATURES)):
        return f"member name {name!r} is not allowed"
    if name in seen:
        return f"member {name} appears twice"
    if name not in known:
        return f"member {name} is not listed in the manifest"
    if expected is None:
        return f"member {name} follows the end of the payload"
    if name != expected.path:
        return f"member {expected.path} is missing or out of order (found {name} in its place)"
    if head.size != expected.size:
        return f"member {name} is {head.size} bytes, the manifest says {expected.size}"
    return f"member {name} has a non-canonical tar header (mode, owner, time or format)"


def _first_member(tar: _Stream, name: str, limit: int) -> bytes:
    block = tar.read(tarstream.BLOCK, f"the {name} header")
    head = tarstream.describe(block)
    if head.name != name:
        if name == SIGNATURES and head.name not in (MANIFEST, SIGNATURES):
            raise UnsignedError(f"the bundle is not signed (member 2 is {head.name!r}, not {SIGNATURES})")
        raise BundleError(f"member 1 must be {MANIFEST}, found {head.name!r}" if name == MANIFEST
                          else f"member {head.name!r} is out of order (expected {name})")
    if head.size is None or head.size > limit:
        raise BundleError(f"{name} is {head.size} bytes, over the {limit}-byte limit")
    if block != tarstream.header(name, head.size):
        raise BundleError(f"member {name} has a non-canonical tar header (mode, owner, time or format)")
    data = tar.read(head.size, name)
    if tar.read(tarstream.padding(head.size), name).strip(b"\0"):
        raise BundleError(f"member {name} has non-zero padding")
    return data


DEFAULT_LIMITS = Limits()


def read_head(raw: BinaryIO, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, bytes]:
    """Only the manifest and signatures bytes, unverified (for inspect)."""
    _, stream = decompressing_reader(raw, limits.max_window)
    tar = _Stream(stream)
    manifest = _first_member(tar, MANIFEST, limits.max_manifest)
    return manifest, _first_member(tar, SIGNATURES, limits.max_signatures)


def read_bundle(raw: BinaryIO, authorize: Authorize, sink: Sink | None = None, *,
                limits: Limits = DEFAULT_LIMITS,
                progress: Callable[[int], None] | None = None) -> BundleManifest:
    """Stream-verify a bundle. Returns the manifest once every byte has been checked.

    `authorize(manifest_bytes, signatures_bytes)` decides trust and must raise if the
    bundle is not trusted; nothing past the signatures is read before it returns.
    `progress` is called with the number of compressed bytes consumed since its last call.
    """
    sink = sink or _Discard()
    with Lanes(sink) as lanes:
        try:
            return _read_bundle(raw, authorize, lanes, limits, progress)
        except BaseException:
            lanes.finish()      # an earlier member's error comes first, as one lane would see it
            raise


def _read_bundle(raw: BinaryIO, authorize: Authorize, lanes: Lanes, limits: Limits,
                 progress: Callable[[int], None] | None) -> BundleManifest:
    frame, stream = decompressing_reader(raw, limits.max_window)
    tar = _Stream(stream)
    manifest_bytes = _first_member(tar, MANIFEST, limits.max_manifest)
    signatures = _first_member(tar, SIGNATURES, limits.max_signatures)
    manifest = authorize(manifest_bytes, signatures)
    if manifest.unpacked_size > limits.max_unpacked:
        raise BundleError(f"the bundle unpacks to {manifest.unpacked_size} bytes, over the "
                          f"{limits.max_unpacked}-byte limit")
    known = {m.path: m for m in manifest.members}
    seen: set[str] = set()
    reported = 0

    def report() -> None:
        nonlocal reported
        if progress:
            progress(frame.offset - reported)
            reported = frame.offset

    for member in manifest.members:
        block = tar.read(tarstream.BLOCK, f"the header of {member.path}")
        if block != tarstream.header(member.path, member.size):
            raise BundleError(_explain(block, member, known, seen))
        seen.add(member.path)
        job, left = lanes.start(member), member.size
        while left:
            buf = lanes.buffer()
            size = min(len(buf), left)
            tar.readinto(buf, size, member.path)
            lanes.feed(job, buf, size)
            left -= size
        if tar.read(tarstream.padding(member.size), member.path).strip(b"\0"):
            raise BundleError(f"member {member.path} has non-zero padding")
        lanes.end(job)
        report()
    end = tar.read(len(tarstream.END), "the end of the archive")
    if end != tarstream.END:
        raise BundleError(_explain(end[:tarstream.BLOCK], None, known, seen))
    try:
        extra = stream.read(1)
    except zstandard.ZstdError as exc:
        raise BundleError(f"corrupt compressed data after the archive: {exc}") from None
    if extra:
        raise BundleError("trailing data after the end of the tar archive")
    frame.assert_at_end()
    lanes.finish()
    report()
    return manifest


