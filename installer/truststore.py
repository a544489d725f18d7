"""The vendor keys this host trusts: trust/<keyid>.pub, trust/revoked (one key id a line),
trust/policy.json ({"threshold": N}). Changed by `satchel trust …` and by verified
bundles that endorse or revoke keys (key rotation)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bundler.errors import SpecError
from bundler.oci.layout import write_atomic
from signing.keys import VerifyKey, load_verify_key


@dataclass(frozen=True)
class TrustStore:
    dir: Path

    def keys(self) -> list[VerifyKey]:
        """Trusted keys; a revoked key is never among them, whatever its file is called."""
        revoked = self.revoked()
        return [k for k in self._files().values() if k.keyid not in revoked]

    def _files(self) -> dict[Path, VerifyKey]:
        return {p: load_verify_key(p) for p in sorted(self.dir.glob("*.pub"))}

    def revoked(self) -> set[str]:
        path = self.dir / "revoked"
        return set(path.read_text().split()) if path.exists() else set()

    def threshold(self) -> int:
        path = self.dir / "policy.json"
        return int(json.loads(path.read_text()).get("threshold", 1)) if path.exists() else 1

    def add(self, key: VerifyKey) -> bool:
        """Trust a key (not if revoked); False if it was already trusted."""
        if key.keyid in self.revoked():
            raise SpecError(f"key {key.keyid[:16]} is revoked on this host; it cannot be trusted again")
        path = self.dir / f"{key.keyid}.pub"
        if path.exists():
            return False
        write_atomic(path, key.pem())
        return True

    def revoke(self, keyid: str) -> None:
        revoked = self.revoked() | {keyid}
        write_atomic(self.dir / "revoked", "".join(f"{k}\n" for k in sorted(revoked)).encode())
        for path, key in self._files().items():
            if key.keyid == keyid:
                path.unlink()

    def find(self, prefix: str) -> str:
        """The full id of the one trusted key whose id starts with `prefix` (8+ hex digits)."""
        matches = [p.stem for p in self.dir.glob("*.pub") if p.stem.startswith(prefix)] if len(prefix) >= 8 else []
        if len(matches) != 1:
            raise SpecError(f"no single trusted key starts with {prefix!r} (give at least 8 hex digits)")
        return matches[0]

    def remove(self, keyid: str) -> None:
        """Stop trusting a key (it may be added again)."""
        (self.dir / f"{keyid}.pub").unlink()

    def set_threshold(self, n: int) -> None:
        if n < 1 or n > max(1, len(self.keys())):
            raise SpecError(f"threshold {n}: choose between 1 and the number of trusted keys ({len(self.keys())})")
        write_atomic(self.dir / "policy.json", json.dumps({"threshold": n}).encode())
