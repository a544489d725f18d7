"""The Docker Compose target: compose files rewritten to pull every image from the local
registry by digest, applied with a fixed project name, healthy or not."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bundler.compose_vars import interpolate_defaults
from bundler.errors import BundleError
from bundler.format import BundleManifest
from bundler.oci.layout import Layout, write_atomic
from bundler.oci.model import Descriptor
from bundler.oci.refs import Reference

from ..tools import compose

if TYPE_CHECKING:
    from ..releases import Release

MAX_COMPOSE_BYTES = 1 << 20


def local_ref(manifest: BundleManifest, image: str, registry: str) -> str:
    wanted = str(Reference.parse(interpolate_defaults(image, "compose")))
    for entry in manifest.images:
        if entry.ref == wanted:
            return f"{registry}/{Reference.parse(entry.ref).repository}@{entry.digest}"
    raise BundleError(f"compose file names image {image}, which the bundle does not carry")


def render(manifest: BundleManifest, store: Layout, registry: str, dest: Path) -> list[str]:
    """Write each compose file, rewritten, under dest; returns their relative paths."""
    out = []
    for entry in manifest.compose:
        data = store.read_small(Descriptor("", entry.digest, entry.size), MAX_COMPOSE_BYTES)
        doc: Any = yaml.safe_load(data)
        for service in (doc.get("services") or {}).values():
            if isinstance(service, dict) and service.get("image"):
                service["image"] = local_ref(manifest, str(service["image"]), registry)
        write_atomic(dest / "compose" / entry.path, yaml.safe_dump(doc, sort_keys=False).encode())
        out.append(f"compose/{entry.path}")
    return out


class ComposeTarget:
    """`docker compose up -d --wait` under the release's fixed project name. A release
    without compose files only loads images: nothing to start."""

    def _files(self, release: Release) -> list[Path]:
        return [release.path / rel for rel in release.compose]

    def _env(self, release: Release) -> Path | None:
        """The release's settings (secrets included) live outside the release directory."""
        env = release.info.get("env_file")
        return Path(env) if env else None

    def apply(self, release: Release, wait_timeout: int) -> tuple[bool, str]:
        if not release.compose:
            return True, "no services"
        return compose.up(release.project, self._files(release), release.path, wait_timeout, self._env(release))

    def stop(self, release: Release) -> None:
        if release.compose:
            compose.down(release.project, self._files(release), release.path, self._env(release))

    def services(self, release: Release) -> list[dict[str, Any]]:
        if not release.compose:
            return []
        return [{"service": s.get("Service"), "state": s.get("State"), "health": s.get("Health") or "",
                 "image": s.get("Image")}
                for s in compose.ps(release.project, self._files(release), release.path, self._env(release))]


COMPOSE = ComposeTarget()
