"""The in-memory stand-ins: a deployment target in one file, which "runs" a release by writing
its version to a file and fails the versions it is told to (registered by the tests in
installer.targets.REGISTERED), and a registry in memory. No Docker, no cluster."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bundler.oci.model import Descriptor
from bundler.oci.registry import Endpoint
from installer.targets import RenderRequest


@dataclass
class DummyTarget:
    state: Path                                   # holds the version that runs (survives a fork)
    broken: set[str] = field(default_factory=set)
    failing_later: set[str] = field(default_factory=set)    # healthy at first, failing during the watch
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
        for data in release.manifest().lifecycle.data:      # as Compose creates a missing volume
            self.volume_dir(data.volume).mkdir(parents=True, exist_ok=True)
        ok = release.version not in self.broken
        return ok, "healthy" if ok else "app: health check failing: broken on purpose"

    def containers(self, release: Any) -> list[dict[str, Any]]:
        up = self.running() == release.path.name
        bad = release.version in self.broken | self.failing_later
        state = {"Status": "running" if up else "exited", "Health": {"Status": "unhealthy" if bad else "healthy"}}
        return [{"Id": "app", "Name": "/app", "State": state, "RestartCount": 0,
                 "Config": {"Labels": {"com.docker.compose.service": "app"}}}]

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

    # Data: a volume is a directory beside the state file. Hooks are tiny scripts:
    # ["put", VOLUME, FILE, TEXT] writes a file into a volume, ["fail", WHY] fails.

    def volume_dir(self, key: str) -> Path:
        return self.state.parent / "volumes" / key

    def data_volume(self, release: Any, key: str) -> dict[str, Any] | None:
        return {"Name": key, "Driver": "local", "Labels": {}} if self.volume_dir(key).is_dir() else None

    def volume_size(self, release: Any, volume: dict[str, Any]) -> int:
        return sum(p.stat().st_size for p in self.volume_dir(volume["Name"]).rglob("*") if p.is_file())

    @contextmanager
    def export_volume(self, release: Any, volume: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(self.volume_dir(volume["Name"]), arcname="data")
        yield iter([buf.getvalue()])

    def import_volume(self, release: Any, volume: dict[str, Any], archive: Iterable[bytes]) -> None:
        where = self.volume_dir(volume["Name"])
        shutil.rmtree(where, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
            tar.extractall(where.parent / ".restore", filter="data")
        (where.parent / ".restore" / "data").rename(where)
        shutil.rmtree(where.parent / ".restore")

    def quiesce(self, release: Any, data: Any) -> None:
        """Nothing runs for real: there is nothing to stop."""

    def run_hook(self, release: Any, hook: Any) -> tuple[bool, str]:
        verb, *args = hook.command
        if verb == "put":
            volume, name, text = args
            (self.volume_dir(volume) / name).write_text(text)
            return True, f"wrote {name}"
        return False, " ".join(args) or "failed"


class MemoryRegistry:
    """The registry protocol push uses, in memory; checks every digest it is given."""

    def __init__(self) -> None:
        self.endpoint = Endpoint("registry.memory.invalid")
        self.blobs: set[str] = set()
        self.manifests: dict[tuple[str, str], str] = {}

    def has_blob(self, repo: str, digest: str) -> bool:
        return digest in self.blobs

    def push_blob(self, repo: str, desc: Descriptor, src) -> None:
        digest = hashlib.sha256()
        while chunk := src.read(1 << 20):
            digest.update(chunk)
        assert f"sha256:{digest.hexdigest()}" == desc.digest
        self.blobs.add(desc.digest)

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        return digest in self.blobs

    def push_manifest(self, repo: str, reference: str, desc: Descriptor, body: bytes) -> None:
        assert f"sha256:{hashlib.sha256(body).hexdigest()}" == desc.digest
        self.manifests[(repo, reference)] = desc.digest
