"""Delta bases: what the customer host already holds, so a bundle can leave it out.

A base comes from `satchel inventory` on the host (every stored blob and the installed
releases) or from an old bundle (its blobs, and its own base's, on the assumption that a
host which installed it holds them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import format as bundle_format
from . import manifest as bundle_manifest
from .errors import SpecError
from .oci.digest import is_digest
from .verify import BundleInput

INVENTORY_FORMAT = "satchel.inventory/v1"


@dataclass(frozen=True)
class DeltaBase:
    blobs: dict[str, int]                       # digest -> size, present on the host
    releases: tuple[tuple[str, str], ...]       # (name, version) installed there


def inventory_json(blobs: dict[str, int], releases: list[tuple[str, str]]) -> dict[str, Any]:
    return {"format": INVENTORY_FORMAT, "blobs": dict(sorted(blobs.items())),
            "releases": [{"name": n, "version": v} for n, v in releases]}


def load_delta_base(path: Path) -> DeltaBase:
    try:
        if path.is_file():
            with path.open("rb") as fh:           # one byte: the old bundle may be gigabytes
                head = fh.read(1)
        else:
            head = b""
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    if head == b"{" and not path.name.endswith(".parts"):
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") != INVENTORY_FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            blobs = {str(d): int(s) for d, s in doc["blobs"].items() if is_digest(d)}
            releases = tuple((str(r["name"]), str(r["version"])) for r in doc["releases"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SpecError(f"{path} is not a Satchel inventory: {exc}") from None
        return DeltaBase(blobs, releases)
    with BundleInput(path, None) as bundle:
        manifest_bytes, _ = bundle_format.read_head(bundle.stream)
    old = bundle_manifest.parse_manifest(manifest_bytes)
    return DeltaBase(old.all_blobs, ((old.name, old.version),))
