"""Hand a zstd decoder exactly one frame, checked block by block, and bounded output.

python-zstandard cannot report where a frame ends or bound the output of one decompress
call, so a bomb could expand in memory and trailing bytes could go unseen. This reader
walks the frame format (RFC 8878 section 3.1) in front of the decoder: it rejects frames
whose window exceeds the limit before decoding anything, passes through one frame only,
and lets the caller check that nothing follows it.
"""

from __future__ import annotations

from typing import BinaryIO

import zstandard

from .errors import BundleError

MAGIC = b"\x28\xb5\x2f\xfd"
MAX_BLOCK = 128 << 10


def window_size(descriptor: int) -> int:
    exponent, mantissa = descriptor >> 3, descriptor & 7
    base = 1 << (10 + exponent)
    return base + (base >> 3) * mantissa


class FrameReader:
    """A file-like view of the compressed bytes of the first frame of `raw`, nothing more."""

    def __init__(self, raw: BinaryIO, max_window: int) -> None:
        self.raw = raw
        self.offset = 0
        self.done = False
        self._buf = bytearray(self._header(max_window))

    def _exact(self, n: int, what: str) -> bytes:
        data = self.raw.read(n)
        while len(data) < n:
            more = self.raw.read(n - len(data))
            if not more:
                raise BundleError(f"the bundle is truncated: it ends inside the {what} at byte "
                                  f"{self.offset + len(data)}")
            data += more
        self.offset += n
        return data

    def _header(self, max_window: int) -> bytes:
        magic = self.raw.read(4)
        if magic != MAGIC:
            raise BundleError("not a Satchel bundle: it does not start with a zstd frame")
        self.offset = 4
        fhd = self._exact(1, "zstd frame header")[0]
        fcs_flag, single, self._check_flag, dict_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        if fhd & 0x08:
            raise BundleError("zstd frame header has the reserved bit set")
        if dict_flag:
            raise BundleError("zstd frame needs a dictionary; bundles never use one")
        rest = b""
        if not single:
            rest = self._exact(1, "zstd frame header")
            window = window_size(rest[0])
        fcs_len = (1 if single else 0, 2, 4, 8)[fcs_flag]
        fcs = self._exact(fcs_len, "zstd frame header") if fcs_len else b""
        if single:
            window = int.from_bytes(fcs, "little") + (256 if fcs_len == 2 else 0)
        if window > max_window:
            raise BundleError(f"zstd window of {window >> 20} MiB exceeds the {max_window >> 20} MiB limit")
        self._block_max = min(window, MAX_BLOCK)
        return MAGIC + bytes([fhd]) + rest + fcs

    def _next_block(self) -> None:
        head = self._exact(3, "zstd block header")
        value = int.from_bytes(head, "little")
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            raise BundleError(f"corrupt zstd data: reserved block type at byte {self.offset - 3}")
        if size > self._block_max:
            raise BundleError(f"corrupt zstd data: block of {size} bytes at byte {self.offset - 3}")
        self._buf += head + self._exact(1 if kind == 1 else size, "zstd block")
        if last:
            if self._check_flag:
                self._buf += self._exact(4, "zstd checksum")
            self.done = True

    def read(self, n: int = -1) -> bytes:
        while not self.done and (n < 0 or len(self._buf) < n):
            self._next_block()
        if n < 0:
            n = len(self._buf)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def readable(self) -> bool:
        return True

    def assert_at_end(self) -> None:
        """After the frame: the file must end here (no second frame, no trailing bytes)."""
        if not self.done or self._buf:
            raise BundleError("the compressed stream ended before its last block")
        extra = self.raw.read(1)
        if extra:
            raise BundleError(f"trailing data after the end of the zstd frame at byte {self.offset}")


def decompressing_reader(raw: BinaryIO, max_window: int) -> tuple[FrameReader, BinaryIO]:
    frame = FrameReader(raw, max_window)
    decoder = zstandard.ZstdDecompressor(max_window_size=max_window)
    stream = decoder.stream_reader(frame, read_size=MAX_BLOCK + 3,  # type: ignore[arg-type]
                                   read_across_frames=False, closefd=False)
    return frame, stream

