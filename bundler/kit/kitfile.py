"""The kit file format (docs/KIT.md), written by the kit build and read by the kit itself
(`--version`, self-upgrade) and by `satchel build` (a bundle that carries a kit):

    [launcher: static ELF] [payload: zstd(ustar)] [kit.json] [trailer: 112 bytes]

    trailer = magic "SATCHEL-KIT-v1\\0\\0" | payload offset | payload size | kit.json offset |
              kit.json size (four little-endian u64) | sha256 of the payload (64 hex digits)

The launcher (launcher.c) reads the same trailer; the payload's sha256 names its cache.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from ..errors import BundleError

MAGIC = b"SATCHEL-KIT-v1\0\0"
_TRAILER = struct.Struct("<16sQQQQ64s")
MAX_META = 64 << 10


def _copy(src: Path, out: Any) -> None:
    with src.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            out.write(chunk)


def assemble(launcher: Path, payload: Path, payload_sha256: str, meta: dict[str, Any], out: Path) -> None:
    """Write the kit file: temp name, fsync, rename; executable."""
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    launcher_size, payload_size = launcher.stat().st_size, payload.stat().st_size
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("wb") as fh:
        _copy(launcher, fh)
        _copy(payload, fh)
        fh.write(meta_bytes)
        fh.write(_TRAILER.pack(MAGIC, launcher_size, payload_size, launcher_size + payload_size,
                               len(meta_bytes), payload_sha256.encode()))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.chmod(0o755)
    tmp.replace(out)


def read_meta(path: Path) -> dict[str, Any]:
    """kit.json of a kit file, from its end; BundleError if the file is not a kit."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size < _TRAILER.size:
                raise BundleError(f"{path} is not a Satchel kit (too short)")
            fh.seek(size - _TRAILER.size)
            magic, p_off, p_len, m_off, m_len, digest = _TRAILER.unpack(fh.read(_TRAILER.size))
            if magic != MAGIC:
                raise BundleError(f"{path} is not a Satchel kit (no kit trailer)")
            if m_len > MAX_META or m_off + m_len != size - _TRAILER.size or p_off + p_len != m_off:
                raise BundleError(f"{path}: the kit trailer is damaged")
            fh.seek(m_off)
            meta = dict(json.loads(fh.read(m_len)))
    except OSError as exc:
        raise BundleError(f"cannot read kit {path}: {exc.strerror}") from None
    except ValueError:
        raise BundleError(f"{path}: the kit's kit.json is damaged") from None
    if meta.get("payload_sha256") != digest.decode(errors="replace"):
        raise BundleError(f"{path}: the kit trailer and kit.json disagree (damaged)")
    return meta
