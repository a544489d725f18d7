"""Helpers for end-to-end tests: example bundles and a customer host (state root, managed
registry port, Compose project) that cleans up after itself."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bundler.build import BuildOptions, build
from bundler.spec import load_spec
from installer import state
from signing.keys import load_signing_key
from tests import images
from tests.images import BUSYBOX
from tests.infra import docker, docker_available, free_port
from tests.kitbox import KitBox
from tests.launch import RUN

HEALTHY = '["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]'
BROKEN = '["CMD", "/bin/busybox", "false"]'


def make_bundle(d: Path, version: str, keys, healthcheck: str = HEALTHY, web_extra: str = "",
                web_command: str = '["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]',
                spec_extra: str = "", name: str = "hello", payload: int | None = None, compose_extra: str = "",
                start_period: str = "0s", images_extra: str = "", platform: str = "", sbom: bool = False) -> Path:
    """Application `name`: web (httpd + healthcheck) and worker; its page names the app and version.
    One image of one layer (a busybox rootfs), or with `payload` two: the busybox layer every app
    and version shares, and a layer of its own (the page and `payload` random bytes).
    `web_extra` adds YAML lines to the web service; `compose_extra` to the end of compose.yaml
    (top-level keys such as volumes:); `spec_extra` to satchel.yaml; `images_extra` to its images. No SBOM unless asked (Syft takes a second per image)."""
    d.mkdir(parents=True, exist_ok=True)
    page = f"{name} {version}\n"
    tag = version.replace("+", "_")      # an image tag cannot hold a semver's build metadata
    if payload is None:
        rootfs = d / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "www").mkdir()
        shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
        (rootfs / "www" / "index.html").write_text(page)
        source = "dir:rootfs"
    else:
        layout = images.LayoutWriter(d / "layout")
        own = images.tar_bytes({"www/index.html": page.encode(), "www/payload.bin": os.urandom(payload)}, 0o644)
        layout.tag(layout.image([images.busybox_layer(), own], gz=False), tag)
        source = f"oci:{d / 'layout'}"
    (d / "compose.yaml").write_text(
        "services:\n"
        f"  web:\n    image: acme/web:{tag}\n"
        f"    command: {web_command}\n{web_extra}"
        f"    healthcheck:\n      test: {healthcheck}\n      interval: 1s\n      timeout: 2s\n      retries: 3\n"
        f"      start_period: {start_period}\n"
        f"  worker:\n    image: acme/web:{tag}\n"
        '    command: ["/bin/busybox", "sleep", "3600"]\n' + compose_extra)
    (d / "satchel.yaml").write_text(
        f"name: {name}\nversion: {version}\ncompose: [compose.yaml]\n{spec_extra}"
        f"images:\n  - ref: acme/web:{tag}\n    source: {source}\n"
        + (f"    platform: {platform}\n" if platform else "") + images_extra)
    out = d / f"{name}-{version}.bundle"
    build(load_spec(d / "satchel.yaml"), out, [load_signing_key(keys["vendor"])],
          BuildOptions(cache=d / "cache", sbom=sbom))
    return out


class Host:
    """One customer host: a state root, its managed registry port and a Compose project."""

    def __init__(self, root: Path, keys, box: KitBox | None = None) -> None:
        docker_available()
        self.root, self.box = root, box
        self.project = f"satchel-test-{os.getpid()}-{root.name[-12:]}".lower().replace("_", "-")
        self.env = {**os.environ, "SATCHEL_ROOT": str(root), "SATCHEL_REGISTRY_PORT": str(free_port())}
        self.key = keys["vendor.pub"]
        self.app_name = "hello"

    def run(self, *args: str | Path, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        if self.box:
            passed = {k: v for k, v in {**self.env, **(env or {})}.items()
                      if k.startswith("SATCHEL_") or k == "DOCKER_CONFIG"}
            return self.box.run(list(map(str, args)), passed, input)
        return subprocess.run([sys.executable, "-c", RUN, *map(str, args)], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, timeout=600, input=input)

    def install(self, bundle: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("install", bundle, "--key", self.key, "--project", self.project, "--timeout", "20",
                        *extra, env=env)

    @property
    def state(self) -> state.App:
        """The state of the application the test installs (app_name) on this host."""
        return state.Host(self.root).app(self.app_name)

    @property
    def app_dir(self) -> Path:
        return self.state.dir

    def containers(self, project: str | None = None) -> dict[str, dict]:
        """Running containers of the Compose project (default: this host's) by service."""
        ids = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project or self.project}").split()
        info = json.loads(docker("inspect", *ids)) if ids else []
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in info}

    def served_version(self, project: str | None = None) -> str:
        web = self.containers(project)["web"]
        return docker("exec", web["Id"], "/bin/busybox", "cat", "/www/index.html").strip()

    def snapshot(self) -> dict:
        """Every file under the root (hash or link target) and the running containers; log
        files are left out (a log line is the one change a refused bundle may make)."""
        files = {}
        for p in sorted(self.root.rglob("*")) if self.root.exists() else []:
            rel = str(p.relative_to(self.root))
            if rel in ("lock", "registry/registry.log") or rel.startswith("logs/") or p.is_dir():
                continue
            files[rel] = os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
        containers = {n: (c["Id"], c["State"]["StartedAt"]) for n, c in self.containers().items()}
        return {"files": files, "containers": containers}

    def cleanup(self) -> None:
        """Containers, networks and volumes of every Compose project named after this host's, its
        front proxy and its registry."""
        from installer.tools.proxy import FrontProxy
        from installer.tools.registry import ManagedRegistry

        FrontProxy(self.app_dir / "proxy", self.project).remove()
        label = '{{.ID}} {{.Label "com.docker.compose.project"}}'
        for kind, listing in (("container", ["ps", "-a"]), ("network", ["network", "ls"])):
            rows = [line.split() for line in docker(*listing, "--filter", "label=com.docker.compose.project",
                                                     "--format", label).splitlines()]
            ids = [row[0] for row in rows if len(row) == 2 and row[1].startswith(self.project)]
            if ids:
                docker(kind, "rm", *(["-f"] if kind == "container" else []), *ids)
        ManagedRegistry(self.root / "registry").stop()
        volumes = [v for v in docker("volume", "ls", "-q").split() if v.startswith(f"{self.project}_")]
        if volumes:
            docker("volume", "rm", *volumes)


