"""What a preflight check is given and what it answers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.manifest import BundleManifest
from bundler.tools import docker

from ..state import App, Host


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    wanted: str
    found: str
    fix: str = ""
    level: str = "strict"

    def line(self) -> str:
        verdict = "ok" if self.ok else ("WARN" if self.level == "warn" else "FAIL")
        text = f"{verdict} {self.check}: wanted {self.wanted}, found {self.found}"
        return text + (f"; {self.fix}" if self.fix and not self.ok else "")

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "level": self.level, "wanted": self.wanted,
                "found": self.found, "fix": self.fix}


@dataclass
class Context:
    host: Host
    app: App
    manifest: BundleManifest
    compose: dict[str, Any]                 # the bundle's compose services, merged (read from verified members)
    project: str
    managed_registry: bool                  # the install pushes into Satchel's own registry

    @functools.cached_property
    def engine(self) -> dict[str, Any]:
        """`docker info` and `docker version` (one round trip for every check)."""
        return docker.engine_report()

    def state_dir(self) -> Path:
        """The state root, or the nearest existing parent on a fresh host."""
        path = self.host.path
        while not path.exists():
            path = path.parent
        return path
