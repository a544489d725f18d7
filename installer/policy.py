"""The customer's site policy: which grants over the host (bundler/grants.py) a bundle may ask
for. Kept in the trust store (trust/site-policy.json, checked like every trust file), judged
from the verified compose files by preflight (installer/preflight/policy.py) after the
signature check and before anything is written; a bundle that exceeds it is refused (exit 4).
The judgement is pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from bundler.errors import SpecError
from bundler.grants import KINDS, Grant
from bundler.oci.layout import write_atomic

from .truststore import TrustStore

FILE = "site-policy.json"


@dataclass(frozen=True)
class SitePolicy:
    forbid: frozenset[str] = frozenset()      # kinds of grant refused (bundler.grants.KINDS)
    allow_paths: tuple[str, ...] = ()         # host paths allowed even when host-path is forbidden

    def allows(self, grant: Grant) -> bool:
        if grant.kind not in self.forbid:
            return True
        if grant.kind == "host-path" and grant.detail.startswith("/"):
            path = PurePosixPath(grant.detail)
            return any(path == PurePosixPath(a) or PurePosixPath(a) in path.parents for a in self.allow_paths)
        return False

    def to_json(self) -> dict[str, Any]:
        return {"forbid": sorted(self.forbid), "allow-paths": list(self.allow_paths)}

    @classmethod
    def from_json(cls, doc: Any) -> SitePolicy:
        if not isinstance(doc, dict) or set(doc) - {"forbid", "allow-paths"}:
            raise SpecError(f"the site policy ({FILE}) is not {{forbid: [...], allow-paths: [...]}}")
        return cls.make(doc.get("forbid", []), doc.get("allow-paths", []))

    @classmethod
    def make(cls, forbid: Any, allow_paths: Any) -> SitePolicy:
        unknown = sorted(set(forbid) - set(KINDS))
        if unknown:
            raise SpecError(f"unknown grant kind {', '.join(unknown)} (choose from {', '.join(KINDS)})")
        bad = [p for p in allow_paths if not str(p).startswith("/")]
        if bad:
            raise SpecError(f"an allowed host path must be absolute: {bad[0]}")
        return cls(frozenset(forbid), tuple(sorted({str(PurePosixPath(p)) for p in allow_paths})))


def load(store: TrustStore) -> SitePolicy:
    text = store.read(FILE)
    return SitePolicy.from_json(json.loads(text)) if text else SitePolicy()


def save(store: TrustStore, policy: SitePolicy) -> None:
    store.dir.mkdir(parents=True, exist_ok=True)
    write_atomic(store.dir / FILE, json.dumps(policy.to_json(), indent=1).encode())
