"""The vendor keys this host trusts: trust/<keyid>.pub, trust/revoked (one key id a line),
trust/policy.json ({"threshold": N}), trust/clock-floor (the time expiry is never judged
before). Changed by `satchel trust …` and by bundles that endorse or revoke keys, when keys
this store already trusts signed them (key rotation).

Nothing here is used unless it is safe: the directory and every file in it must be this
user's (or root's), not writable by group or others, and no symlink — otherwise another
local user could plant a key."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bundler.errors import EnvironmentProblem, SpecError
from bundler.oci.layout import write_atomic
from signing.grammar import format_time, parse_time
from signing.keys import VerifyKey, load_verify_key

_HEX = re.compile(r"[0-9a-f]{8,64}")


def normalize_keyid(text: str) -> str:
    """Key ids are lower-case hex wherever they are compared; 8 to 64 digits."""
    keyid = text.strip().lower()
    if not _HEX.fullmatch(keyid):
        raise SpecError(f"{text!r} is not a key id (8 to 64 hex digits)")
    return keyid


@dataclass(frozen=True)
class TrustStore:
    dir: Path

    def _safe(self, path: Path) -> bool:
        """True if `path` exists and is safe to use; EnvironmentProblem if it exists and is not."""
        try:
            st = path.lstat()
        except FileNotFoundError:
            return False
        owner_ok = st.st_uid in (0, os.geteuid())
        if stat.S_ISLNK(st.st_mode) or not owner_ok or st.st_mode & 0o022:
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else (
                f"owned by uid {st.st_uid}" if not owner_ok else "writable by group or others")
            raise EnvironmentProblem(f"{path} is {what}; anyone who can change it could make this host trust "
                                     f"their key. Fix it (chown root:root {path}; chmod go-w {path}) and run "
                                     "the command again")
        return True

    def _read(self, name: str) -> str | None:
        self._safe(self.dir)
        path = self.dir / name
        return path.read_text() if self._safe(path) else None

    def read(self, name: str) -> str | None:
        """A file of the trust store (checked: owner, mode, no symlink), None if absent."""
        return self._read(name)

    def keys(self) -> list[VerifyKey]:
        """Trusted keys; a revoked key is never among them, whatever its file is called."""
        revoked = self.revoked()
        return [k for k in self._files().values() if k.keyid not in revoked]

    def _files(self) -> dict[Path, VerifyKey]:
        if not self._safe(self.dir):
            return {}
        return {p: load_verify_key(p) for p in sorted(self.dir.glob("*.pub")) if self._safe(p)}

    def revoked(self) -> set[str]:
        return {k.lower() for k in (self._read("revoked") or "").split()}

    def threshold(self) -> int:
        text = self._read("policy.json")
        return int(json.loads(text).get("threshold", 1)) if text else 1

    def add(self, key: VerifyKey) -> bool:
        """Trust a key (not if revoked); False if it was already trusted."""
        if key.keyid in self.revoked():
            raise SpecError(f"key {key.keyid[:16]} is revoked on this host; it cannot be trusted again")
        path = self.dir / f"{key.keyid}.pub"
        if self._safe(path):
            return False
        write_atomic(path, key.pem())
        return True

    def find(self, text: str) -> str:
        """The full id of the one trusted key whose id starts with `text` (8+ hex digits, any case)."""
        prefix = normalize_keyid(text)
        matches = sorted({k.keyid for k in self.keys() if k.keyid.startswith(prefix)})
        if len(matches) != 1:
            have = ", ".join(k.keyid[:16] for k in self.keys()) or "none"
            raise SpecError(f"{'no' if not matches else 'more than one'} trusted key matches {text!r} "
                            f"(trusted: {have})")
        return matches[0]

    def revoke(self, keyid: str) -> None:
        keyid = normalize_keyid(keyid)
        revoked = self.revoked() | {keyid}
        write_atomic(self.dir / "revoked", "".join(f"{k}\n" for k in sorted(revoked)).encode())
        for path, key in self._files().items():
            if key.keyid == keyid:
                path.unlink()

    def remove(self, keyid: str) -> None:
        """Stop trusting a key (it may be added again)."""
        for path, key in self._files().items():
            if key.keyid == keyid:
                path.unlink()

    def set_threshold(self, n: int) -> None:
        if n < 1 or n > max(1, len(self.keys())):
            raise SpecError(f"threshold {n}: choose between 1 and the number of trusted keys ({len(self.keys())})")
        write_atomic(self.dir / "policy.json", json.dumps({"threshold": n}).encode())

    # -- the clock floor ---------------------------------------------------------------

    def clock_floor(self) -> datetime | None:
        """Expiry is never judged before this: the latest successful install."""
        text = self._read("clock-floor")
        return parse_time(text.strip()) if text else None

    def raise_clock_floor(self, when: datetime) -> None:
        floor = self.clock_floor()
        if floor is None or when > floor:
            write_atomic(self.dir / "clock-floor", format_time(when).encode())

    def reset_clock_floor(self, when: datetime) -> datetime | None:
        """Set the floor back to `when` (the operator's explicit decision); returns the old one."""
        old = self.clock_floor()
        write_atomic(self.dir / "clock-floor", format_time(when).encode())
        return old
