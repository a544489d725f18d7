"""Library API for reading bundles: full streaming verification, and a quick look inside."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from signing import envelope, trust
from signing.keys import VerifyKey

from . import format as bundle_format
from .errors import SpecError
from .format import DEFAULT_LIMITS, BundleManifest, Limits, Sink


@dataclass(frozen=True)
class Verified:
    manifest: BundleManifest
    signers: tuple[str, ...]


def authorizer(keys: Sequence[VerifyKey], now: datetime, threshold: int = 1
               ) -> tuple[Callable[[bytes, bytes], BundleManifest], list[str]]:
    """The trust decision for format.read_bundle, and a list it fills with the signers."""
    signers: list[str] = []

    def authorize(manifest_bytes: bytes, signatures: bytes) -> BundleManifest:
        verified = trust.verify_signatures(manifest_bytes, signatures, keys, threshold)
        manifest = bundle_format.parse_manifest(verified.payload)
        expires = bundle_format.parse_time(manifest.expires) if manifest.expires else None
        trust.check_not_expired(expires, now)
        signers.extend(verified.signers)
        return manifest

    return authorize, signers


def open_bundle(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise SpecError(f"cannot open bundle {path}: {exc.strerror}") from None


def verify_stream(raw: BinaryIO, keys: Sequence[VerifyKey], *, now: datetime | None = None,
                  sink: Sink | None = None, limits: Limits = DEFAULT_LIMITS,
                  progress: Callable[[int], None] | None = None) -> Verified:
    if not keys:
        raise SpecError("no trusted key given (--key VENDOR.pub)")
    authorize, signers = authorizer(keys, now or bundle_format.now_utc())
    manifest = bundle_format.read_bundle(raw, authorize, sink, limits=limits, progress=progress)
    return Verified(manifest, tuple(signers))


def verify_file(path: Path, keys: Sequence[VerifyKey], **kwargs: Any) -> Verified:
    with open_bundle(path) as raw:
        return verify_stream(raw, keys, **kwargs)


def describe(path: Path) -> dict[str, Any]:
    """What `satchel inspect` shows; reads only the first two members (nothing is verified)."""
    with open_bundle(path) as raw:
        manifest_bytes, signature_bytes = bundle_format.read_head(raw)
    manifest = bundle_format.parse_manifest(manifest_bytes)
    signatures = envelope.parse(signature_bytes)
    uses: dict[str, int] = {}
    for image in manifest.images:
        for digest in image.blobs:
            uses[digest] = uses.get(digest, 0) + 1
    sizes = {m.digest: m.size for m in manifest.members}
    shared = {d: n for d, n in uses.items() if n > 1}
    total = sum(i.size for i in manifest.images) + sum(
        sizes[d] for d in manifest.blob_digests if d not in uses)
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
        "compressedSize": path.stat().st_size,
    }
