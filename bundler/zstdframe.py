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
CHUNK = 1 << 20


def window_size(descriptor: int) -> int:
    exponent, mantissa = descriptor >> 3, descriptor & 7
    base = 1 << (10 + exponent)
    return base + (base >> 3) * mantissa


class FrameReader:
    """A file-like view of the compressed bytes of the first frame of `raw`, nothing more.

    `raw` is read in large chunks; the decoder gets slices of them (memoryviews: the bytes are
    copied once on their way in, by the read, as `zstd -d` copies them), and never a byte that
    follows a block header before that header is checked.
    """

    def __init__(self, raw: BinaryIO, max_window: int) -> None:
        self.raw = raw
        self.offset = 0              # compressed bytes consumed from raw (for messages)
        self.done = False
        self._chunk = b""            # the last chunk read from raw, and how far it is handed over
        self._pos = 0
        self._body = 0               # bytes of the current block not yet handed over
        self._last = False           # whether the current block is the frame's last
        self._pending: bytes | memoryview = self._header(max_window)
        self._pending_pos = 0

    def _take(self, n: int, what: str) -> bytes:
        """Exactly n bytes: first what is left of the chunk, then from raw."""
        data = self._chunk[self._pos:self._pos + n]
        self._pos += len(data)
        while len(data) < n:
            more = self.raw.read(n - len(data))
            if not more:
                raise BundleError(f"the bundle is truncated: it ends inside the {what} at byte "
                                  f"{self.offset + len(data)}")
            data += more
        self.offset += n
        return data

    def _header(self, max_window: int) -> bytes:
        try:
            magic = self._take(4, "zstd frame header")
        except BundleError:
            magic = b""
        if magic != MAGIC:
            raise BundleError("not a Satchel bundle: it does not start with a zstd frame")
        fhd = self._take(1, "zstd frame header")[0]
        fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
        self.has_checksum = (fhd >> 2) & 1
        if fhd & 0x08:
            raise BundleError("zstd frame header has the reserved bit set")
        if dict_flag:
            raise BundleError("zstd frame needs a dictionary; bundles never use one")
        rest = b""
        if not single:
            rest = self._take(1, "zstd frame header")
            window = window_size(rest[0])
        fcs_len = (1 if single else 0, 2, 4, 8)[fcs_flag]
        fcs = self._take(fcs_len, "zstd frame header") if fcs_len else b""
        if single:
            window = int.from_bytes(fcs, "little") + (256 if fcs_len == 2 else 0)
        if window > max_window:
            raise BundleError(f"zstd window of {window >> 20} MiB exceeds the {max_window >> 20} MiB limit")
        self.block_max = min(window, MAX_BLOCK)
        return MAGIC + bytes([fhd]) + rest + fcs

    def _block(self, head: bytes | memoryview, at: int) -> None:
        """Check a block header (at byte `at`) and make its block the current one."""
        value = int.from_bytes(head, "little")
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            raise BundleError(f"corrupt zstd data: reserved block type at byte {at}")
        if size > self.block_max:
            raise BundleError(f"corrupt zstd data: block of {size} bytes at byte {at}")
        self._last = bool(last)
        self._body = (1 if kind == 1 else size) + (4 if last and self.has_checksum else 0)
        self.done = self._last and not self._body

    def _next_piece(self) -> bytes | memoryview:
        """The next checked bytes: a block header, or as much of the chunk as holds bodies and
        headers checked on the way."""
        if not self._body:
            at = self.offset
            head = self._take(3, "zstd block header")
            self._block(head, at)
            return head
        if self._pos >= len(self._chunk):
            self._chunk, self._pos = self.raw.read(CHUNK), 0
            if not self._chunk:
                what = "zstd checksum" if self._last and self.has_checksum and self._body <= 4 else "zstd block"
                raise BundleError(f"the bundle is truncated: it ends inside the {what} at byte {self.offset}")
        start = pos = self._pos
        while True:
            step = min(self._body, len(self._chunk) - pos)
            pos += step
            self._body -= step
            if self._body or self._last or len(self._chunk) - pos < 3:
                break
            self._block(self._chunk[pos:pos + 3], self.offset + pos - start)
            pos += 3
        self.done = self._last and not self._body
        self._pos = pos
        self.offset += pos - start
        return memoryview(self._chunk)[start:pos]

    def read(self, n: int = -1) -> bytes | memoryview:
        while self._pending_pos >= len(self._pending):
            if self.done:
                return b""
            self._pending, self._pending_pos = self._next_piece(), 0
        end = len(self._pending) if n < 0 else self._pending_pos + n
        out = self._pending[self._pending_pos:end]
        self._pending_pos += len(out)
        return out

    def readable(self) -> bool:
        return True

    def assert_at_end(self) -> None:
        """After the frame: the file must end here (no second frame, no trailing bytes)."""
        if not self.done or self._pending_pos < len(self._pending):
            raise BundleError("the compressed stream ended before its last block")
        if self._pos < len(self._chunk) or self.raw.read(1):
            raise BundleError(f"trailing data after the end of the zstd frame at byte {self.offset}")


def check_complete(raw: BinaryIO, size: int, max_window: int) -> None:
    """Walk the frame's block headers with seeks, decoding nothing: BundleError unless the frame
    ends with its last block (and checksum) exactly at the end of the file. A few bytes read
    per 128 KiB block, so `inspect` can tell a truncated or padded bundle at once."""
    frame = FrameReader(raw, max_window)      # reads and checks the frame header
    pos = frame.offset
    raw.seek(pos)
    while True:
        head = raw.read(3)
        if len(head) < 3:
            raise BundleError(f"the bundle is truncated: it ends inside a zstd block header at byte {pos}")
        value = int.from_bytes(head, "little")
        last, kind, block = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3 or block > frame.block_max:
            raise BundleError(f"corrupt zstd data at byte {pos}")
        pos += 3 + (1 if kind == 1 else block) + (4 if last and frame.has_checksum else 0)
        if pos > size:
            raise BundleError(f"the bundle is truncated: {size} bytes, its last zstd block needs {pos}")
        raw.seek(pos)
        if last:
            break
    if pos != size:
        raise BundleError(f"trailing data after the end of the zstd frame at byte {pos}")


def decompressing_reader(raw: BinaryIO, max_window: int) -> tuple[FrameReader, BinaryIO]:
    frame = FrameReader(raw, max_window)
    decoder = zstandard.ZstdDecompressor(max_window_size=max_window)
    stream = decoder.stream_reader(frame, read_size=CHUNK,  # type: ignore[arg-type]
                                   read_across_frames=False, closefd=False)
    return frame, stream

