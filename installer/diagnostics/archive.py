"""The archive: tar.zst of redacted text files plus checksums.json, optionally encrypted to
the vendor with age; and the vendor's side: decrypt, check, read."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from bundler.errors import BundleError, SpecError

TOP = "satchel-diagnostics"
AGE_MAGIC = b"age-encryption.org/v1"
# A received archive is hostile input: bounded in what it may unpack to, in total and per
# member (a few KiB of zstd can claim gigabytes).
MAX_TOTAL = 128 << 20
MAX_MEMBER = 32 << 20
MAX_MEMBERS = 100_000


class _Bounded(io.RawIOBase):
    """A stream that ends the reading with BundleError past `limit` bytes, read or written."""

    def __init__(self, inner: Any, limit: int, what: str) -> None:
        self.inner, self.limit, self.what, self.count = inner, limit, what, 0

    def _account(self, n: int) -> None:
        self.count += n
        if self.count > self.limit:
            raise BundleError(f"the diagnostics archive {self.what} more than {self.limit >> 20} MiB; refused")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = bytes(self.inner.read(min(size, self.limit + 1) if size >= 0 else self.limit + 1))
        self._account(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._account(len(data))
        return int(self.inner.write(data))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(f"{TOP}/{name}")
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write(out: BinaryIO, files: dict[str, bytes]) -> None:
    """Members in sorted order, then checksums.json over all of them."""
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    with zstandard.ZstdCompressor(level=9).stream_writer(out, closefd=False) as z, \
            tarfile.open(fileobj=z, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            _add(tar, name, files[name])
        _add(tar, "checksums.json", json.dumps(sums, indent=2, sort_keys=True).encode())


def recipient(value: str) -> Any:
    import pyrage

    text = Path(value).read_text().strip() if not value.startswith("age1") and Path(value).is_file() else value
    try:
        return pyrage.x25519.Recipient.from_str(text)
    except Exception:
        raise SpecError(f"{value!r} is not an age recipient (age1...) or a file holding one") from None


def encrypt(src: Path, dest: Path, to: str) -> None:
    import pyrage

    rcpt = recipient(to)
    with src.open("rb") as reader, dest.open("wb") as writer:
        pyrage.encrypt_io(reader, writer, [rcpt])


def keygen(out: Path) -> tuple[Path, Path, str]:
    """NAME.age (identity, mode 0600) and NAME.age.pub (recipient) for the vendor."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    private, public = out.with_name(out.name + ".age"), out.with_name(out.name + ".age.pub")
    for p in (private, public):
        if p.exists():
            raise SpecError(f"{p} already exists; choose another --out")
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(identity) + "\n")
    public.write_text(str(identity.to_public()) + "\n")
    return private, public, str(identity.to_public())


@dataclass
class Opened:
    files: dict[str, bytes]
    encrypted: bool

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.files[name])
        except (KeyError, ValueError):
            raise BundleError(f"the diagnostics archive has no readable {name}") from None


def open_archive(path: Path, identity: Path | None) -> Opened:
    """Decrypt if needed, decompress, and check every member against checksums.json."""
    try:
        head = path.open("rb").read(len(AGE_MAGIC))
    except OSError as exc:
        raise SpecError(f"cannot open {path}: {exc.strerror}") from None
    encrypted = head == AGE_MAGIC
    with tempfile.TemporaryDirectory() as tmp:
        plain = path
        if encrypted:
            plain = Path(tmp) / "plain.tar.zst"
            _decrypt(path, plain, identity)
        files: dict[str, bytes] = {}
        try:
            with plain.open("rb") as raw, \
                    zstandard.ZstdDecompressor(max_window_size=1 << 24).stream_reader(raw) as z, \
                    tarfile.open(fileobj=_Bounded(z, MAX_TOTAL, "unpacks to"), mode="r|") as tar:
                for member in tar:
                    if not member.isfile() or not member.name.startswith(f"{TOP}/") or member.size > MAX_MEMBER \
                            or len(files) >= MAX_MEMBERS:
                        raise BundleError(f"unexpected member {member.name[:80]!r} in the diagnostics archive")
                    fh = tar.extractfile(member)
                    files[member.name[len(TOP) + 1:]] = fh.read() if fh else b""
        except (tarfile.TarError, zstandard.ZstdError, EOFError, UnicodeError) as exc:
            raise BundleError(f"{path} is not a readable diagnostics archive: {exc}") from None
    try:
        sums = json.loads(files.pop("checksums.json", b"{}"))
    except ValueError:
        raise BundleError(f"{path}: checksums.json is not JSON") from None
    if not isinstance(sums, dict) or set(sums) != set(files):
        raise BundleError(f"{path}: the archive's member list does not match its checksums")
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != sums[name]:
            raise BundleError(f"{path}: {name} is damaged (checksum mismatch)")
    return Opened(files, encrypted)


def _decrypt(src: Path, dest: Path, identity: Path | None) -> None:
    import pyrage

    if identity is None:
        raise SpecError(f"{src} is encrypted; pass --identity VENDOR.age")
    try:
        ident = pyrage.x25519.Identity.from_str(identity.read_text().strip())
    except Exception:
        raise SpecError(f"{identity} is not an age identity (AGE-SECRET-KEY-...)") from None
    try:
        with src.open("rb") as reader, dest.open("wb") as writer:
            pyrage.decrypt_io(reader, _Bounded(writer, MAX_TOTAL, "decrypts to"), [ident])
    except pyrage.DecryptError:
        raise SpecError(f"cannot decrypt {src} with {identity}: the archive was encrypted to another key") from None
