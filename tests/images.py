"""Test images built by hand (tarfile + json), independent of Satchel's own image code."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
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

    def blob_file(self, path: Path, media_type: str) -> dict:
        """A large blob: hashed in chunks and moved into the layout."""
        digest = file_digest(path)
        path.rename(self.root / "blobs" / "sha256" / digest)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": (self.root / "blobs" / "sha256" /
                                                                                  digest).stat().st_size}

    def image(self, layers: list[bytes | Path], os_: str = "linux", arch: str = "amd64",
              cmd: list[str] | None = None, gz: bool = True) -> dict:
        """Layers given as a Path (large ones, on disk) go in as they are, uncompressed."""
        diff_ids = ["sha256:" + (file_digest(layer) if isinstance(layer, Path) else hashlib.sha256(layer).hexdigest())
                    for layer in layers]
        config = {"architecture": arch, "os": os_, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "config": {"Cmd": cmd or ["/bin/busybox", "sleep", "3600"]}}
        config_desc = self.blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        plain = "application/vnd.oci.image.layer.v1.tar"
        layer_descs = [self.blob_file(layer, plain) if isinstance(layer, Path) else
                       self.blob(gzip.compress(layer, mtime=0), plain + "+gzip") if gz else self.blob(layer, plain)
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


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _Random(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        b[:] = os.urandom(len(b))
        return len(b)


def random_layer(path: Path, size: int, files: dict[str, bytes]) -> Path:
    """A layer tar on disk: `files`, and `size` random bytes (incompressible) in random.bin,
    written in chunks."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("random.bin")
        info.size, info.mode = size, 0o644
        tar.addfile(info, io.BufferedReader(_Random(), 1 << 20))
    return path


def busybox_layer() -> bytes:
    return tar_bytes({"bin/busybox": BUSYBOX.read_bytes()})


def app_layer(text: str) -> bytes:
    return tar_bytes({"app/message.txt": text.encode()}, mode=0o644)
