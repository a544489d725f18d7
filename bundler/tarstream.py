"""The one tar dialect bundles use: ustar headers for regular files, nothing else.

Every header is fully determined by (name, size): mode 0644, owner 0:0, mtime 0, no user
or group names, no prefix. The reader rebuilds the header it expects and compares all 512
bytes, so links, devices, set-uid bits, PAX/GNU extensions or odd encodings cannot slip
through as "equivalent".
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK = 512
END = b"\0" * (2 * BLOCK)
_OCTAL_MAX = 8**11  # larger sizes use the base-256 encoding GNU tar reads
_TYPES = {b"0": "regular file", b"\0": "regular file", b"1": "hard link", b"2": "symlink",
          b"3": "character device", b"4": "block device", b"5": "directory", b"6": "FIFO",
          b"7": "contiguous file", b"x": "PAX extended header", b"g": "PAX global header",
          b"L": "GNU long name", b"K": "GNU long link name", b"S": "GNU sparse file"}


def padding(size: int) -> int:
    return -size % BLOCK


def _size_field(size: int) -> bytes:
    if size < _OCTAL_MAX:
        return b"%011o\0" % size
    return bytes([0x80]) + size.to_bytes(11, "big")


def header(name: str, size: int) -> bytes:
    raw = name.encode("ascii")
    if len(raw) > 100:
        raise ValueError(f"member name {name!r} is longer than 100 bytes")
    block = bytearray(BLOCK)
    block[0:len(raw)] = raw
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = _size_field(size)
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = b"0"
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


@dataclass(frozen=True)
class Header:
    """What a header block says, decoded leniently so errors can name the problem."""

    name: str
    kind: str
    size: int | None
    mode: int | None


def _number(field: bytes) -> int | None:
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    text = field.rstrip(b"\0 ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return None


def describe(block: bytes) -> Header:
    name = block[0:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0] if block[257:262] == b"ustar" else b""
    full = (prefix + b"/" + name) if prefix else name
    return Header(full.decode("latin-1"), _TYPES.get(block[156:157], "unknown member type"),
                  _number(block[124:136]), _number(block[100:108]))
