"""Key rotation carried by a verified bundle: keys it endorses become trusted, keys it
revokes stop being trusted (docs/SECURITY.md) — but only when keys this host already trusts
signed it, to the host's threshold. A bundle verified with an ad-hoc --key, or with the
kit's built-in key on a fresh host, changes no trust."""

from __future__ import annotations

from bundler.manifest import BundleManifest
from bundler.progress import Reporter
from signing import trust
from signing.errors import TrustError
from signing.keys import VerifyKey

from .state import Host
from .truststore import TrustStore


def apply(host: Host, manifest: BundleManifest, manifest_bytes: bytes, signatures: bytes,
          reporter: Reporter) -> None:
    if not (manifest.trust_add or manifest.trust_revoke):
        return
    store = TrustStore(host.trust)
    try:
        trust.verify_signatures(manifest_bytes, signatures, store.keys(), store.threshold(), store.revoked())
    except TrustError:
        host.record("key-changes-ignored", version=manifest.version, reason="not signed by the trust store's keys")
        reporter.warn("the key changes this bundle carries were ignored: keys this host trusts "
                      f"(satchel trust list) did not sign it, {store.threshold()} needed")
        return
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
