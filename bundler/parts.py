"""Split bundles: byte ranges of the bundle file plus a signed parts index.

    hello-1.0.0.bundle.001 ... .NNN   the bundle's bytes in order (`cat` rebuilds it)
    hello-1.0.0.bundle.parts          canonical JSON: {"index": {...}, "signatures": {...}}

The index names every part with its size and sha256, and the whole bundle's; it is
signed with the vendor's key like the manifest. A reader checks the signature and every
part's size before reading, hashes each part while streaming it, and when anything fails
hashes the rest so that it can name every part the courier must copy again.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signing import canonical, envelope, trust
from signing.errors import MalformedError
from signing.keys import SigningKey, VerifyKey

from .errors import BundleError, EnvironmentProblem, SpecError
from .oci.digest import CHUNK
from .oci.layout import fsync_dir, write_atomic

FORMAT = "satchel.parts/v1"
SUFFIX = ".parts"
MAX_INDEX = 4 << 20
MIN_PART = 256
MAX_PARTS = 9999
_SIZE = re.compile(r"(\d+)([KMGT]?)i?B?", re.I)
_PART_NAME = re.compile(r"[A-Za-z0-9._+-]{1,200}\.\d{3,}")


def parse_size(text: str) -> int:
    m = _SIZE.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise SpecError(f"size {text!r}: use bytes or K, M, G, T (powers of 1024), e.g. 4000M")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


@dataclass(frozen=True)
class Part:
    file: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PartsIndex:
    bundle: str
    size: int
    sha256: str
    parts: tuple[Part, ...]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "bundle": self.bundle, "size": self.size, "sha256": self.sha256,
                "parts": [{"file": p.file, "size": p.size, "sha256": p.sha256} for p in self.parts]}

    @classmethod
    def from_json(cls, doc: Any) -> PartsIndex:
        try:
            if doc["format"] != FORMAT:
                raise MalformedError(f"unsupported parts index format {doc['format']!r}")
            parts = tuple(Part(str(p["file"]), int(p["size"]), str(p["sha256"])) for p in doc["parts"])
            index = cls(str(doc["bundle"]), int(doc["size"]), str(doc["sha256"]), parts)
        except (KeyError, TypeError, ValueError):
            raise MalformedError("the parts index is malformed") from None
        if not parts or any(not _PART_NAME.fullmatch(p.file) for p in parts) or sum(
                p.size for p in parts) != index.size:
            raise MalformedError("the parts index lists invalid part names or sizes")
        return index


def split(bundle: Path, size: int, keys: Sequence[SigningKey], out_dir: Path | None = None) -> Path:
    """Write bundle.001... and the signed bundle.parts beside it (or in out_dir)."""
    if not keys:
        raise SpecError("the parts index must be signed: pass --key VENDOR.key")
    total_size = bundle.stat().st_size
    if size < MIN_PART or -(-total_size // size) > MAX_PARTS:
        raise SpecError(f"parts of {size} bytes: each part must be at least {MIN_PART} bytes and there may be "
                        f"at most {MAX_PARTS} parts (this bundle is {total_size} bytes)")
    width = max(3, len(str(-(-total_size // size))))  # names sort in order: .001 or .0001
    out_dir = out_dir or bundle.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[Part] = []
    whole, total = hashlib.sha256(), 0
    try:
        with bundle.open("rb") as src:
            while True:
                h, written = hashlib.sha256(), 0
                name = f"{bundle.name}.{len(parts) + 1:0{width}d}"
                with (out_dir / name).open("wb") as dst:
                    while written < size and (chunk := src.read(min(CHUNK, size - written))):
                        h.update(chunk)
                        whole.update(chunk)
                        dst.write(chunk)
                        written += len(chunk)
                if not written:
                    (out_dir / name).unlink()
                    break
                parts.append(Part(name, written, h.hexdigest()))
                total += written
    except OSError as exc:
        raise EnvironmentProblem(f"cannot split {bundle}: {exc.strerror}") from None
    index = PartsIndex(bundle.name, total, whole.hexdigest(), tuple(parts))
    payload = canonical.dumps(index.to_json())
    doc = {"index": index.to_json(), "signatures": canonical.loads(envelope.sign(payload, keys))}
    target = out_dir / (bundle.name + SUFFIX)
    write_atomic(target, canonical.dumps(doc))
    fsync_dir(out_dir)
    return target


def find_index(path: Path) -> Path | None:
    """The parts index for a path naming it, the first part, or a directory holding one."""
    if path.is_dir():
        found = sorted(path.glob("*" + SUFFIX))
        if len(found) > 1:
            raise SpecError(f"{path} holds several split bundles; name one of the {SUFFIX} files")
        return found[0] if found else None
    if path.name.endswith(SUFFIX):
        return path
    stem, dot, number = path.name.rpartition(".")
    if dot and number.isdigit():
        candidate = path.with_name(stem + SUFFIX)
        if candidate.exists():
            return candidate
    return None


def read_index(path: Path, keys: Sequence[VerifyKey] | None) -> tuple[PartsIndex, tuple[str, ...]]:
    """Parse the index; with keys, check its signature (returns the signer key ids)."""
    try:
        data = path.read_bytes()[: MAX_INDEX + 1]
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_INDEX:
        raise MalformedError(f"{path} is larger than {MAX_INDEX} bytes")
    doc = canonical.loads(data, what="parts index")
    if not isinstance(doc, dict) or set(doc) != {"index", "signatures"}:
        raise MalformedError("the parts index must hold exactly index and signatures")
    index = PartsIndex.from_json(doc["index"])
    signers: tuple[str, ...] = ()
    if keys is not None:
        verified = trust.verify_signatures(canonical.dumps(doc["index"]), canonical.dumps(doc["signatures"]), keys)
        signers = verified.signers
    return index, signers


class PartsReader(io.RawIOBase):
    """The parts as one stream, each part hashed as it passes; errors name the parts."""

    def __init__(self, directory: Path, index: PartsIndex) -> None:
        super().__init__()
        self.dir, self.index = directory, index
        self.position = 0                      # which part is being read
        self._fh: io.BufferedReader | None = None
        self._hash = hashlib.sha256()
        self._left = 0
        problems = []
        for n, part in enumerate(index.parts, 1):
            path = directory / part.file
            if not path.is_file():
                problems.append(f"part {n} ({part.file}) is missing")
            elif path.stat().st_size != part.size:
                problems.append(f"part {n} ({part.file}) is {path.stat().st_size} bytes, expected {part.size}")
        if problems:
            raise BundleError(self._advice(problems))

    def _advice(self, problems: list[str]) -> str:
        which = "it" if len(problems) == 1 else "them"
        return f"{'; '.join(problems)} (of {len(self.index.parts)} parts): copy {which} again"

    def _next(self) -> bool:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            part = self.index.parts[self.position - 1]
            if self._hash.hexdigest() != part.sha256:
                raise BundleError(self._advice([self._describe(self.position, self._hash.hexdigest())]))
        if self.position >= len(self.index.parts):
            self._fh = None
            return False
        part = self.index.parts[self.position]
        self.position += 1
        self._fh = (self.dir / part.file).open("rb")
        self._hash, self._left = hashlib.sha256(), part.size
        return True

    def _describe(self, n: int, digest: str) -> str:
        part = self.index.parts[n - 1]
        other = next((i for i, p in enumerate(self.index.parts, 1) if p.sha256 == digest), None)
        if other:
            return f"part {n} ({part.file}) holds the content of part {other} (parts renamed or swapped)"
        return f"part {n} ({part.file}) is damaged"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        while self._fh is None or self._left == 0:
            if not self._next():
                return 0
        assert self._fh is not None
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        n = int(self._fh.readinto(view) or 0)
        if not n:
            raise BundleError(f"part {self.position} ({self.index.parts[self.position - 1].file}) ended early")
        self._hash.update(view[:n])
        self._left -= n
        return n

    def readable(self) -> bool:
        return True

    def diagnose(self) -> str | None:
        """After a failure: hash the rest of this part and every later one; name the bad ones."""
        problems, n = [], self.position      # part n (1-based) is the one being read
        if n:
            while self._fh is not None and self._left:
                chunk = self._fh.read(min(CHUNK, self._left))
                if not chunk:
                    break
                self._hash.update(chunk)
                self._left -= len(chunk)
            if self._hash.hexdigest() != self.index.parts[n - 1].sha256:
                problems.append(self._describe(n, self._hash.hexdigest()))
        for i in range(n, len(self.index.parts)):
            part = self.index.parts[i]
            h = hashlib.sha256()
            with (self.dir / part.file).open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
            if h.hexdigest() != part.sha256:
                problems.append(self._describe(i + 1, h.hexdigest()))
        return self._advice(problems) if problems else None
