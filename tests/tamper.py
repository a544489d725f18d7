"""Take a bundle apart and put it back together wrong, without using Satchel's reader."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

import zstandard

BLOCK = 512


@dataclass
class Entry:
    header: bytes
    data: bytes

    @property
    def name(self) -> str:
        return self.header[:100].split(b"\0", 1)[0].decode()

    def raw(self) -> bytes:
        return self.header + self.data + b"\0" * (-len(self.data) % BLOCK)


def decompress(bundle: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(bundle)).read()


def split(bundle: bytes) -> list[Entry]:
    tar = decompress(bundle)
    out, pos = [], 0
    while tar[pos:pos + BLOCK].strip(b"\0"):
        header = tar[pos:pos + BLOCK]
        size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        out.append(Entry(header, tar[pos + BLOCK:pos + BLOCK + size]))
        pos += BLOCK + size + (-size % BLOCK)
    return out


def join(entries: list[Entry], trailer: bytes = b"") -> bytes:
    return b"".join(e.raw() for e in entries) + b"\0" * 1024 + trailer


def compress(tar: bytes, **params: int) -> bytes:
    if params:
        cp = zstandard.ZstdCompressionParameters.from_level(3, write_content_size=0, **params)
        compressor = zstandard.ZstdCompressor(compression_params=cp)
    else:
        compressor = zstandard.ZstdCompressor(level=3, write_content_size=False)
    out = io.BytesIO()
    with compressor.stream_writer(out, closefd=False) as w:
        w.write(tar)
    return out.getvalue()


def entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.type, info.linkname, info.mode, info.mtime = kind, link, 0o644, 0
    info.uname = info.gname = ""
    return Entry(info.tobuf(format=tarfile.USTAR_FORMAT), data if kind == tarfile.REGTYPE else b"")
