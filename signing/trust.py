"""Trust decisions. Pure: bytes, keys and the clock come in; a verdict or a TrustError goes out.

No files, no network, no global clock, so every decision can be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from . import envelope
from .errors import BadSignatureError, DowngradeError, ExpiredError, UnsignedError, UntrustedKeyError
from .grammar import version_key
from .keys import VerifyKey


@dataclass(frozen=True)
class VerifiedPayload:
    """Payload bytes whose signatures met the threshold, and who signed them."""

    payload: bytes
    signers: tuple[str, ...]


def verify_signatures(payload: bytes, signatures: bytes, trusted: Iterable[VerifyKey],
                      threshold: int = 1, revoked: Iterable[str] = ()) -> VerifiedPayload:
    """Check that at least `threshold` distinct trusted, unrevoked keys signed exactly `payload`.

    A signature that names a trusted key but does not verify is tampering, not noise: it
    fails the whole check even if other signatures are good. A revoked key counts for
    nothing, even if it is also listed as trusted.
    """
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    revoked = set(revoked)
    keys = {k.keyid: k for k in trusted if k.keyid not in revoked}
    entries = envelope.parse(signatures)
    if not entries:
        raise UnsignedError("the bundle is not signed")
    signers: list[str] = []
    for sig in entries:
        key = keys.get(sig.keyid)
        if key is None:
            continue
        if sig.algorithm != key.algorithm or not key.verify(sig.value, payload):
            raise BadSignatureError(f"signature by key {sig.keyid[:16]} does not match the manifest")
        signers.append(sig.keyid)
    if not signers:
        found = ", ".join(s.keyid[:16] for s in entries)
        if any(s.keyid in revoked for s in entries):
            raise UntrustedKeyError(f"signed only by revoked or untrusted key(s) {found}")
        raise UntrustedKeyError(f"signed only by untrusted key(s) {found}; pass the vendor's key with --key")
    if len(signers) < threshold:
        raise UntrustedKeyError(f"{len(signers)} trusted signature(s), {threshold} required")
    return VerifiedPayload(payload, tuple(sorted(signers)))


def effective_now(clock: datetime, last_install: datetime | None) -> datetime:
    """The time expiry is judged at: never earlier than the last successful install, so
    setting the host's clock back does not revive an expired bundle."""
    return max(clock, last_install) if last_install else clock


def check_not_expired(expires: datetime | None, now: datetime) -> None:
    if expires is not None and now >= expires:
        raise ExpiredError(f"the bundle expired at {expires.isoformat()}")


def check_version(new: str, installed: str | None, allow_downgrade: bool) -> None:
    if installed is None or allow_downgrade:
        return
    if version_key(new) < version_key(installed):
        raise DowngradeError(f"version {new} is older than the installed {installed}; "
                             "pass --allow-downgrade to install it anyway, or use satchel rollback")
