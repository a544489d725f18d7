"""A deployment target in one file, for the in-memory tests: it "runs" a release by writing
its version to a file, and fails the versions it is told to. Registered by the tests in
installer.targets.REGISTERED; no Docker, no cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from installer.targets import RenderRequest


@dataclass
class DummyTarget:
    state: Path                                   # holds the version that runs (survives a fork)
    broken: set[str] = field(default_factory=set)
    name: str = "dummy"
    takes_settings: bool = True

    def running(self) -> str | None:
        return self.state.read_text() if self.state.exists() else None

    def render(self, request: RenderRequest) -> dict[str, Any]:
        (request.dest / "dummy.txt").write_text(request.manifest.version)
        return {}

    def check(self, project: str, owned: list[Path]) -> None:
        """Nothing to check: the dummy runs anywhere."""

    # A release is named by its directory (a config release 1.0.0+config.1 is bundle 1.0.0).
    def apply(self, release: Any, wait_timeout: int, observe: Any) -> tuple[bool, str]:
        self.state.write_text(release.path.name)
        ok = release.version not in self.broken
        return ok, "healthy" if ok else "broken on purpose"

    def stop(self, release: Any) -> None:
        if self.running() == release.path.name:
            self.state.unlink()

    def services(self, release: Any) -> list[dict[str, Any]]:
        up = self.running() == release.path.name
        health = ("unhealthy" if release.version in self.broken else "healthy") if up else ""
        return [{"service": "app", "state": "running" if up else "exited", "health": health,
                 "image": f"dummy:{release.version}"}]

    def remove(self, release: Any, volumes: bool) -> None:
        self.stop(release)

    def drift(self, release: Any) -> list[dict[str, str]]:
        return []

    def logs(self, release: Any, services: set[str], lines: int) -> dict[str, str]:
        return {s: f"{release.version} says hello\n" for s in services}

    def collect(self, release: Any, c: Any, since: datetime | None) -> None:
        c.facts["containers"] = self.services(release)
