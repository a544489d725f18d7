"""The Docker Compose target: compose files rewritten to pull every image from the local
registry by digest, applied with a fixed project name, healthy or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bundler.discover import interpolate_defaults
from bundler.errors import BundleError
from bundler.format import BundleManifest
from bundler.oci.layout import Layout, write_atomic
from bundler.oci.model import Descriptor
from bundler.oci.refs import Reference

from ..tools import compose

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


def files(release: Path, rendered: list[str]) -> list[Path]:
    return [release / rel for rel in rendered]


def apply(project: str, release: Path, rendered: list[str], wait_timeout: int) -> tuple[bool, str]:
    """A release without compose files only loads images: nothing to start."""
    if not rendered:
        return True, "no services"
    return compose.up(project, files(release, rendered), release, wait_timeout)


def stop(project: str, release: Path, rendered: list[str]) -> None:
    if rendered:
        compose.down(project, files(release, rendered), release)


def services(project: str, release: Path, rendered: list[str]) -> list[dict[str, Any]]:
    return compose.ps(project, files(release, rendered), release) if rendered else []
