"""Library API for reading bundles: full streaming verification, and a quick look inside."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from signing import envelope, trust
from signing.errors import TrustError
from signing.grammar import now_utc, parse_time
from signing.keys import VerifyKey

from . import format as bundle_format
from . import manifest as bundle_manifest
from .errors import BundleError, SpecError
from .format import DEFAULT_LIMITS, Limits
from .lanes import Sink
from .manifest import BundleManifest
from .parts import PartsIndex, PartsReader, find_index, read_index
from .requirements import to_json as requirements_json
from .zstdframe import check_complete


@dataclass(frozen=True)
class VerifiedBundle:
    manifest: BundleManifest
    signers: tuple[str, ...]


def authorizer(keys: Sequence[VerifyKey], now: datetime, threshold: int = 1, revoked: Sequence[str] = ()
               ) -> tuple[Callable[[bytes, bytes], BundleManifest], list[str]]:
    """The trust decision for format.read_bundle, and a list it fills with the signers."""
    signers: list[str] = []

    def authorize(manifest_bytes: bytes, signatures: bytes) -> BundleManifest:
        verified = trust.verify_signatures(manifest_bytes, signatures, keys, threshold, revoked)
        manifest = bundle_manifest.parse_manifest(verified.payload)
        expires = parse_time(manifest.expires) if manifest.expires else None
        trust.check_not_expired(expires, now)
        signers.extend(verified.signers)
        return manifest

    return authorize, signers


class BundleInput:
    """A bundle file, or a split bundle (its index, first part or directory) read as one
    stream. With keys, a parts index must carry a trusted signature."""

    def __init__(self, path: Path, keys: Sequence[VerifyKey] | None) -> None:
        self.path = path
        self.parts: PartsIndex | None = None
        index_path = find_index(path)
        try:
            if index_path is None:
                self.stream: BinaryIO = path.open("rb")
                self.size = path.stat().st_size
            else:
                self.parts, _ = read_index(index_path, keys)
                self.stream = cast(BinaryIO, PartsReader(index_path.parent, self.parts))
                self.size = self.parts.size
        except OSError as exc:
            raise SpecError(f"cannot open bundle {path}: {exc.strerror}") from None

    def __enter__(self) -> BundleInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()

    def read(self, authorize: Callable[[bytes, bytes], BundleManifest], sink: Sink | None = None,
             limits: Limits = DEFAULT_LIMITS, progress: Callable[[int], None] | None = None) -> BundleManifest:
        """format.read_bundle, with a failure inside a split bundle turned into the list of
        parts to copy again."""
        try:
            return bundle_format.read_bundle(self.stream, authorize, sink, limits=limits, progress=progress)
        except (BundleError, TrustError) as exc:
            if isinstance(self.stream, PartsReader):
                advice = self.stream.diagnose()
                if advice:
                    raise BundleError(advice) from exc
            raise


def verify_file(path: Path, keys: Sequence[VerifyKey], *, now: datetime | None = None,
                sink: Sink | None = None, limits: Limits = DEFAULT_LIMITS,
                progress: Callable[[int], None] | None = None) -> VerifiedBundle:
    if not keys:
        raise SpecError("no trusted key given (--key VENDOR.pub)")
    authorize, signers = authorizer(keys, now or now_utc())
    with BundleInput(path, keys) as bundle:
        manifest = bundle.read(authorize, sink, limits, progress)
    return VerifiedBundle(manifest, tuple(signers))


def describe(path: Path) -> dict[str, Any]:
    """What `satchel inspect` shows; reads only the first two members (nothing is verified)."""
    with BundleInput(path, None) as bundle:
        manifest_bytes, signature_bytes = bundle_format.read_head(bundle.stream)
        parts = bundle.parts
    if parts is None and path.is_file():
        with path.open("rb") as raw:
            check_complete(raw, path.stat().st_size, DEFAULT_LIMITS.max_window)
    manifest = bundle_manifest.parse_manifest(manifest_bytes)
    signatures = envelope.parse(signature_bytes)
    uses: dict[str, int] = {}
    for image in manifest.images:
        for digest in image.blobs:
            uses[digest] = uses.get(digest, 0) + 1
    sizes = manifest.all_blobs
    shared = {d: n for d, n in uses.items() if n > 1}
    total = sum(i.size for i in manifest.images) + sum(
        s for d, s in sizes.items() if d not in uses)
    return {
        "name": manifest.name, "version": manifest.version, "created": manifest.created,
        "expires": manifest.expires, "description": manifest.description,
        "minInstallerVersion": manifest.min_installer, "platforms": list(manifest.platforms),
        "signers": [{"keyid": s.keyid, "algorithm": s.algorithm} for s in signatures],
        "signatureVerified": False,
        "images": [{"ref": i.ref, "digest": i.digest, "mediaType": i.media_type,
                    "platforms": list(i.platforms), "size": i.size, "blobs": len(i.blobs),
                    "sharedBlobs": sum(1 for d in i.blobs if d in shared)} for i in manifest.images],
        "charts": [{"name": c.name, "version": c.version, "digest": c.digest, "path": c.path,
                    "images": list(c.images)} for c in manifest.charts],
        "compose": [{"path": f.path, "digest": f.digest, "size": f.size} for f in manifest.compose],
        "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in manifest.files],
        "members": len(manifest.members),
        "sharedBlobs": len(shared),
        "sharedBytes": sum(sizes[d] * (n - 1) for d, n in shared.items()),
        "totalSize": total,
        "dedupedSize": manifest.unpacked_size,
        "compressedSize": parts.size if parts else path.stat().st_size,
        "parts": [{"file": p.file, "size": p.size} for p in parts.parts] if parts else [],
        "settings": [s.to_json() for s in manifest.settings],
        "grants": [{"service": g.service, "kind": g.kind, "detail": g.detail} for g in manifest.grants],
        "requirements": requirements_json(manifest.requirements),
        "delta": {"blobs": len(manifest.external), "size": sum(s for _, s in manifest.external),
                  "base": [{"name": n, "version": v} for n, v in manifest.delta_base]} if manifest.external else None,
    }


class _Keep:
    """A sink that keeps the named members' bytes (small ones: at most `limit` each) and only
    hashes the rest: every member is still checked against the manifest."""

    def __init__(self, limit: int) -> None:
        self.limit, self.wanted, self.kept = limit, set[str](), dict[str, io.BytesIO]()

    def begin(self, member: bundle_manifest.Member) -> io.BytesIO | None:
        if member.sha256 not in self.wanted or member.size > self.limit:
            return None
        self.kept[member.sha256] = io.BytesIO()
        return self.kept[member.sha256]

    def commit(self, member: bundle_manifest.Member, written: object) -> None:
        pass


def read_keeping(path: Path, authorize: Callable[[bytes, bytes], BundleManifest],
                 wanted: Callable[[BundleManifest], set[str]], keys: Sequence[VerifyKey] | None,
                 limit: int) -> tuple[BundleManifest, dict[str, bytes]]:
    """Read a whole bundle (signature judged by `authorize`, every member hash-checked) and keep
    the bytes of the blobs `wanted` names (sha256 digests), in memory."""
    sink = _Keep(limit)

    def judged(manifest_bytes: bytes, signatures: bytes) -> BundleManifest:
        manifest = authorize(manifest_bytes, signatures)
        sink.wanted = {d.split(":", 1)[1] for d in wanted(manifest)}
        return manifest

    with BundleInput(path, keys) as source:
        manifest = source.read(judged, sink)
    return manifest, {f"sha256:{h}": b.getvalue() for h, b in sink.kept.items()}
