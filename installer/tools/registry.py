"""The managed local registry: CNCF Distribution in a container that Docker restarts after a
crash, a daemon restart or a reboot, with no Satchel command involved. It listens on
127.0.0.1 (host network) and keeps its data under the state root.

Every response carries a header with this root's random registry id, so Satchel can tell
its own registry from anything else on the port and never pushes into a stranger."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import time
from pathlib import Path

import requests

from bundler.errors import EnvironmentProblem
from bundler.kit.rootfs import REGISTRY, ensure_image
from bundler.oci.layout import write_atomic
from bundler.tools import docker

DEFAULT_PORT = 5050
CONFIG_IN_IMAGE = "/etc/satchel-registry/config.yml"
DATA_IN_IMAGE = "/var/lib/registry"
ID_HEADER = "X-Satchel-Registry"


class ManagedRegistry:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.dir = directory
        port_file = directory / "port"
        if port_file.exists():
            self.port = int(port_file.read_text())
        else:
            self.port = port or int(os.environ.get("SATCHEL_REGISTRY_PORT") or DEFAULT_PORT)
        self.host = f"127.0.0.1:{self.port}"
        # One registry container per state root, named by the root's absolute path.
        self.container = "satchel-registry-" + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]

    def _identity(self) -> str | None:
        try:
            return (self.dir / "id").read_text().strip() or None
        except FileNotFoundError:
            return None

    def probe(self) -> str:
        """'ours', 'foreign' (something else answers on the port) or 'absent' (nothing does)."""
        try:
            resp = requests.get(f"http://{self.host}/v2/", timeout=3)
        except requests.ConnectionError:
            return "absent"
        except requests.RequestException:
            return "foreign"   # accepts connections but does not answer like a registry
        identity = self._identity()
        return "ours" if identity and resp.headers.get(ID_HEADER) == identity else "foreign"

    def check_port(self) -> None:
        """Refuse (exit 4) while the port is held by anything this root did not start. Read-only:
        install calls it after the signature check, before any change."""
        if (self.dir / "pid").exists():
            return   # this root's registry from before the container (ensure_running replaces it)
        if self.probe() == "foreign":
            raise EnvironmentProblem(
                f"port {self.port} on 127.0.0.1 is held by something Satchel did not start; stop it, or give "
                f"Satchel's registry another port with SATCHEL_REGISTRY_PORT=PORT (nothing was changed)")

    def ensure_running(self) -> str:
        self._retire_process_registry()
        self.check_port()
        if self.probe() == "ours":
            return self.host
        state = docker.container_state(self.container)
        if state is None:
            self._create()
        elif not state.get("Running"):
            docker.start_container(self.container)
        self._wait()
        return self.host

    def _create(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        write_atomic(self.dir / "port", str(self.port).encode())
        identity = self._identity() or secrets.token_hex(16)
        write_atomic(self.dir / "id", identity.encode(), mode=0o600)
        write_atomic(self.dir / "config.yml", (
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {DATA_IN_IMAGE}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  headers:\n    {ID_HEADER}: [{identity}]\n").encode())
        image = ensure_image(REGISTRY)
        docker.run_service(self.container, image, [REGISTRY.binary, "serve", CONFIG_IN_IMAGE],
                           {str(self.dir.resolve() / "config.yml"): (CONFIG_IN_IMAGE, "ro"),
                            str(self.dir.resolve() / "data"): (DATA_IN_IMAGE, "rw")},
                           {"io.satchel.role": "registry", "io.satchel.root": str(self.dir.resolve().parent)})

    def _wait(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (seen := self.probe()) != "ours":
            if seen == "foreign":
                self.check_port()
            if time.monotonic() > deadline:
                tail = docker.container_logs(self.container).strip().splitlines()[-1:]
                raise EnvironmentProblem(f"the local registry did not start on {self.host}: "
                                         f"{tail[0] if tail else 'no output'} (docker logs {self.container})")
            time.sleep(0.1)

    def _retire_process_registry(self) -> None:
        """Roots made before the registry ran in a container had a detached process: stop it
        so that the container can take over its port and its data."""
        pid_file = self.dir / "pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            for _ in range(50):
                os.kill(int(pid_file.read_text()), 0)
                time.sleep(0.1)
        pid_file.unlink()

    @property
    def repositories(self) -> Path:
        """Where the registry keeps its repositories (CNCF Distribution's filesystem layout)."""
        return self.dir / "data" / "docker" / "registry" / "v2" / "repositories"

    def manifests(self) -> dict[str, set[str]]:
        """Repository -> the manifest digests it holds, read from the registry's own files:
        the distribution API cannot list untagged manifests (the children of an index)."""
        out: dict[str, set[str]] = {}
        for revisions in self.repositories.glob("**/_manifests/revisions/sha256"):
            repo = str(revisions.parent.parent.parent.relative_to(self.repositories))
            out[repo] = {f"sha256:{d.name}" for d in revisions.iterdir() if (d / "link").exists()}
        return out

    def collect_garbage(self, needed: set[str]) -> int:
        """Delete every manifest that is not in `needed` through the registry's API, then run
        the registry's own garbage-collect, which removes the blobs no remaining manifest
        references. The caller holds the state root's lock, so nothing is uploading. Returns
        the manifests deleted; nothing happens unless this root's registry is running."""
        if self.probe() != "ours":
            return 0
        deleted = 0
        for repo, digests in sorted(self.manifests().items()):
            for digest in sorted(digests - needed):
                resp = requests.delete(f"http://{self.host}/v2/{repo}/manifests/{digest}", timeout=30)
                if resp.status_code not in (202, 404):
                    raise EnvironmentProblem(f"the local registry refused to delete {repo}@{digest}: "
                                             f"HTTP {resp.status_code}")
                deleted += 1
        docker.exec_in(self.container, [REGISTRY.binary, "garbage-collect", CONFIG_IN_IMAGE])
        return deleted

    def stop(self) -> None:
        """Remove the registry container (its data stays under the root)."""
        docker.remove_container(self.container)
