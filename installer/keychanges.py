"""Key rotation carried by a verified bundle: keys it endorses become trusted, keys it
revokes stop being trusted (docs/SECURITY.md)."""

from __future__ import annotations

from bundler.manifest import BundleManifest
from bundler.progress import Reporter
from signing.keys import VerifyKey

from .state import Host
from .truststore import TrustStore


def apply(host: Host, manifest: BundleManifest, reporter: Reporter) -> None:
    """Keys a verified bundle endorses become trusted; keys it revokes stop being trusted."""
    store = TrustStore(host.trust)
    for pem in manifest.trust_add:
        key = VerifyKey.from_pem(pem.encode())
        if key.keyid not in manifest.trust_revoke and store.add(key):
            host.record("trusted", keyid=key.keyid, version=manifest.version)
            reporter.step(f"now trusting key {key.keyid[:16]} (endorsed by the bundle)")
    for keyid in manifest.trust_revoke:
        if keyid not in store.revoked():
            store.revoke(keyid)
            host.record("revoked", keyid=keyid, version=manifest.version)
            reporter.step(f"key {keyid[:16]} revoked (by the bundle)")
