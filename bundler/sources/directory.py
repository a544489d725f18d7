"""A plain directory packed as a single-layer image (`source: dir:PATH`).

The layer is a reproducible tar (see `reprotar`), so the same tree gives the same digest.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SpecError
from ..oci.digest import copy_hashed
from ..oci.model import OCI_LAYER, Descriptor, Platform
from ..reprotar import write_tree
from .base import SynthesizedImage


def image_config(platform: Platform, layer_digest: str, options: dict[str, Any], created: str) -> bytes:
    config: dict[str, Any] = {}
    env = options.get("env") or {}
    if isinstance(env, dict):
        env = [f"{k}={v}" for k, v in sorted(env.items())]
    for key, field in (("Entrypoint", "entrypoint"), ("Cmd", "cmd"), ("WorkingDir", "workdir"),
                       ("User", "user"), ("Labels", "labels")):
        if options.get(field) is not None:
            config[key] = options[field]
    if env:
        config["Env"] = list(env)
    doc: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os, "config": config,
                           "created": created, "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
    if platform.variant:
        doc["variant"] = platform.variant
    return json.dumps(doc, sort_keys=True).encode()


class DirectorySource(SynthesizedImage):
    def __init__(self, root: Path, platform: Platform, options: dict[str, Any], workdir: Path,
                 mtime: int, created: str) -> None:
        if not root.is_dir():
            raise SpecError(f"image directory {root} does not exist")
        workdir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=workdir, prefix="layer-", suffix=".tar")
        os.close(fd)
        self._layer = Path(name)
        with self._layer.open("wb") as out:
            write_tree(root, out, mtime)
        with self._layer.open("rb") as fh:
            digest, size = copy_hashed(fh, None)
        layer = Descriptor(OCI_LAYER, digest, size)
        super().__init__(f"directory {root}", image_config(platform, digest, options, created),
                         [(layer, self._open_layer)])

    def _open_layer(self) -> BinaryIO:
        return self._layer.open("rb")

    def close(self) -> None:
        self._layer.unlink(missing_ok=True)
