"""Test images built by hand (tarfile + json), independent of Satchel's own image code."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

BUSYBOX = Path(shutil.which("busybox") or "/bin/busybox")


def tar_bytes(files: dict[str, bytes], mode: int = 0o755) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class LayoutWriter:
    """Writes an OCI image layout: blobs, manifests, indexes, index.json with ref names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.entries: list[dict] = []

    def blob(self, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def image(self, layers: list[bytes], os_: str = "linux", arch: str = "amd64",
              cmd: list[str] | None = None, gz: bool = True) -> dict:
        diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
        config = {"architecture": arch, "os": os_, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "config": {"Cmd": cmd or ["/bin/busybox", "sleep", "3600"]}}
        config_desc = self.blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        layer_descs = [self.blob(gzip.compress(layer, mtime=0) if gz else layer,
                                 "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""))
                       for layer in layers]
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": layer_descs}
        desc = self.blob(json.dumps(manifest).encode(), manifest["mediaType"])
        desc["platform"] = {"os": os_, "architecture": arch}
        return desc

    def index(self, manifests: list[dict]) -> dict:
        doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": manifests}
        return self.blob(json.dumps(doc).encode(), doc["mediaType"])

    def tag(self, desc: dict, name: str) -> None:
        entry = {k: v for k, v in desc.items() if k != "platform"}
        entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.entries.append(entry)
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": self.entries}))


def busybox_layer() -> bytes:
    return tar_bytes({"bin/busybox": BUSYBOX.read_bytes()})


def app_layer(text: str) -> bytes:
    return tar_bytes({"app/message.txt": text.encode()}, mode=0o644)
