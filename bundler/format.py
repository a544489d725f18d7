"""The Satchel bundle, format v1: the only module that knows its layout.

A bundle is one zstd frame holding one tar stream (see docs/FORMAT.md):

    manifest.json     canonical JSON; pins every payload member by path, size and sha256
    signatures.json   detached signatures over the exact bytes of manifest.json
    oci-layout        \
    index.json         > an OCI image layout, members in the manifest's order
    blobs/sha256/...  /

The writer (vendor) and the streaming reader (verify, install) both live here. The reader
trusts nothing before the signature check, reads nothing the manifest did not announce,
and never holds more than one chunk of a member in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import zstandard

from signing import canonical
from signing.errors import KeyFileError, MalformedError, UnsignedError
from signing.grammar import APP_NAME, ENV_NAME, KEY_ID, SEMVER, SHA256_HEX, parse_time
from signing.keys import VerifyKey

from . import targets, tarstream
from .errors import BundleError, SpecError
from .oci.digest import CHUNK, Writable, is_digest
from .settings import Setting
from .zstdframe import decompressing_reader

FORMAT = "satchel.bundle/v1"
MANIFEST = "manifest.json"
SIGNATURES = "signatures.json"
LAYOUT_MEMBERS = ("oci-layout", "index.json")
_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_RELPATH = re.compile(r"(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._/-]{1,255}")


@dataclass(frozen=True)
class Limits:
    max_manifest: int = 16 << 20
    max_signatures: int = 64 << 10
    max_window: int = 1 << 27          # zstd's default decoder limit (windowLog 27)
    max_unpacked: int = 16 << 40


def is_member_name(path: str) -> bool:
    return path in LAYOUT_MEMBERS or _BLOB.fullmatch(path) is not None


def member_sort_key(path: str) -> tuple[int, str]:
    return (LAYOUT_MEMBERS.index(path), "") if path in LAYOUT_MEMBERS else (len(LAYOUT_MEMBERS), path)


# -- the manifest -------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    path: str
    size: int
    sha256: str

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256

    @classmethod
    def for_bytes(cls, path: str, data: bytes) -> Member:
        return cls(path, len(data), hashlib.sha256(data).hexdigest())

    @classmethod
    def for_blob(cls, digest: str, size: int) -> Member:
        return cls(f"blobs/sha256/{digest[7:]}", size, digest[7:])


@dataclass(frozen=True)
class Image:
    ref: str
    digest: str
    media_type: str
    size: int                      # bytes of all its blobs, shared ones included
    platforms: tuple[str, ...]
    blobs: tuple[str, ...]         # every blob digest the image needs, root first
    source_digest: str | None = None


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    digest: str                    # OCI manifest of the chart (Helm media types)
    path: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class File:
    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class Installer:
    """A Satchel kit the bundle carries; the customer's kit upgrades itself to it."""

    path: str
    digest: str
    size: int
    version: str
    platform: str


@dataclass(frozen=True)
class BundleManifest:
    name: str
    version: str
    created: str
    min_installer: str
    members: tuple[Member, ...]
    images: tuple[Image, ...] = ()
    charts: tuple[Chart, ...] = ()
    compose: tuple[File, ...] = ()
    files: tuple[File, ...] = ()
    platforms: tuple[str, ...] = ()
    expires: str | None = None
    description: str = ""
    secrets: tuple[str, ...] = ()      # environment variable names to redact in diagnostics
    external: tuple[tuple[str, int], ...] = ()      # delta: (digest, size) relied on, not carried
    delta_base: tuple[tuple[str, str], ...] = ()    # delta: (name, version) that provide them
    target: str = ""                   # compose | helm; empty: chosen from the contents
    trust_add: tuple[str, ...] = ()    # PEM public keys the signers endorse (key rotation)
    trust_revoke: tuple[str, ...] = ()  # key ids the signers revoke
    settings: tuple[Setting, ...] = ()  # what the customer configures (bundler.settings)
    installer: Installer | None = None
    unpacked_size: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.unpacked_size < 0:
            object.__setattr__(self, "unpacked_size", sum(m.size for m in self.members))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": FORMAT, "name": self.name, "version": self.version, "created": self.created,
            "description": self.description, "minInstallerVersion": self.min_installer,
            "platforms": list(self.platforms), "unpackedSize": self.unpacked_size,
            "members": [{"path": m.path, "size": m.size, "sha256": m.sha256} for m in self.members],
            "images": [{"ref": i.ref, "digest": i.digest, "mediaType": i.media_type, "size": i.size,
                        "platforms": list(i.platforms), "blobs": list(i.blobs),
                        **({"sourceDigest": i.source_digest} if i.source_digest else {})}
                       for i in self.images],
            "charts": [{"name": c.name, "version": c.version, "digest": c.digest, "path": c.path,
                        "images": list(c.images)} for c in self.charts],
            "compose": [_file_json(f) for f in self.compose],
            "files": [_file_json(f) for f in self.files],
        }
        if self.expires:
            doc["expires"] = self.expires
        if self.secrets:
            doc["secrets"] = list(self.secrets)
        if self.target:
            doc["target"] = self.target
        if self.settings:
            doc["settings"] = [s.to_json() for s in self.settings]
        if self.installer:
            i = self.installer
            doc["installer"] = {**_file_json(File(i.path, i.digest, i.size)), "version": i.version,
                                "platform": i.platform}
        if self.trust_add or self.trust_revoke:
            doc["keys"] = {"add": list(self.trust_add), "revoke": list(self.trust_revoke)}
        if self.external:
            doc["external"] = [{"digest": d, "size": s} for d, s in self.external]
            doc["deltaBase"] = [{"name": n, "version": v} for n, v in self.delta_base]
        return doc

    def to_bytes(self) -> bytes:
        return canonical.dumps(self.to_json())

    @property
    def blob_digests(self) -> set[str]:
        """Blobs the bundle carries."""
        return {m.digest for m in self.members if _BLOB.fullmatch(m.path)}

    @property
    def all_blobs(self) -> dict[str, int]:
        """Every blob the release needs, carried or (delta) expected on the host: digest -> size."""
        out = {m.digest: m.size for m in self.members if _BLOB.fullmatch(m.path)}
        out.update(dict(self.external))
        return out


def _file_json(f: File) -> dict[str, Any]:
    return {"path": f.path, "digest": f.digest, "size": f.size}


class _Fields:
    """Strict access to one JSON object: known keys only, typed values, clear errors."""

    def __init__(self, obj: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> None:
        if not isinstance(obj, dict):
            raise MalformedError(f"manifest: {where} is not an object")
        required = set(required)
        unknown = set(obj) - required - set(optional)
        if unknown:
            raise MalformedError(f"manifest: {where} has unknown field(s) {', '.join(sorted(unknown))}")
        missing = required - set(obj)
        if missing:
            raise MalformedError(f"manifest: {where} lacks {', '.join(sorted(missing))}")
        self.obj, self.where = obj, where

    def get(self, key: str, kind: type, default: Any = None) -> Any:
        value = self.obj.get(key, default)
        if value is default and key not in self.obj:
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MalformedError(f"manifest: {self.where}.{key} must be a {kind.__name__}")
        return value

    def text(self, key: str, pattern: re.Pattern[str] | None = None, default: Any = None) -> Any:
        if key not in self.obj:
            return default
        value = self.get(key, str, default)
        if pattern is not None and not pattern.fullmatch(value):
            raise MalformedError(f"manifest: {self.where}.{key} {value!r} is not valid")
        return value

    def digest(self, key: str) -> str:
        value = self.get(key, str)
        if not is_digest(value):
            raise MalformedError(f"manifest: {self.where}.{key} is not a sha256 digest")
        return str(value)

    def size(self, key: str) -> int:
        value = self.get(key, int)
        if value < 0:
            raise MalformedError(f"manifest: {self.where}.{key} is negative")
        return int(value)

    def strings(self, key: str, check: Callable[[str], bool] = lambda s: True) -> tuple[str, ...]:
        items = self.get(key, list, [])
        if not all(isinstance(s, str) and check(s) for s in items):
            raise MalformedError(f"manifest: {self.where}.{key} has an invalid entry")
        return tuple(items)

    def objects(self, key: str) -> list[Any]:
        return list(self.get(key, list, []))


def _parse_file(obj: Any, where: str) -> File:
    f = _Fields(obj, where, ("path", "digest", "size"))
    return File(f.text("path", _RELPATH), f.digest("digest"), f.size("size"))


def _parse_setting(obj: Any, i: int) -> Setting:
    try:
        return Setting.from_json(obj, f"settings[{i}]")
    except SpecError as exc:
        raise MalformedError(f"manifest: {exc}") from None


def _parse_keys(obj: Any) -> dict[str, tuple[str, ...]]:
    if obj is None:
        return {}
    f = _Fields(obj, "keys", ("add", "revoke"))
    add = f.strings("add")
    for pem in add:
        try:
            VerifyKey.from_pem(pem.encode(), origin="an endorsed key")
        except KeyFileError as exc:
            raise MalformedError(f"manifest: keys.add: {exc}") from None
    revoke = f.strings("revoke", lambda s: KEY_ID.fullmatch(s) is not None)
    return {"trust_add": add, "trust_revoke": revoke}


def _parse_external(objs: list[Any]) -> list[tuple[str, int]]:
    out = []
    for i, obj in enumerate(objs):
        f = _Fields(obj, f"external[{i}]", ("digest", "size"))
        out.append((f.digest("digest"), f.size("size")))
    if out != sorted(out):
        raise MalformedError("manifest: external blobs are not sorted")
    return out


def _target(name: str) -> str:
    if name and name not in targets.TARGETS:
        raise MalformedError(f"manifest: unknown target {name!r}")
    return name


def _parse_installer(obj: Any) -> Installer:
    f = _Fields(obj, "installer", ("path", "digest", "size", "version", "platform"))
    return Installer(f.text("path", _RELPATH), f.digest("digest"), f.size("size"), f.text("version", SEMVER),
                     f.text("platform", re.compile(r"[a-z0-9]+/[a-z0-9]+")))


def parse_manifest(data: bytes) -> BundleManifest:
    """Strictly parse manifest bytes; any deviation is a MalformedError."""
    doc = canonical.loads(data, what="manifest")
    top = _Fields(doc, "manifest", ("format", "name", "version", "created", "minInstallerVersion",
                                     "members", "unpackedSize"),
                  ("images", "charts", "compose", "files", "platforms", "expires", "description", "secrets",
                   "external", "deltaBase", "target", "keys", "settings", "installer"))
    if doc["format"] != FORMAT:
        raise MalformedError(f"unsupported bundle format {doc['format']!r} (this Satchel reads {FORMAT})")
    members = []
    for i, obj in enumerate(top.objects("members")):
        f = _Fields(obj, f"members[{i}]", ("path", "size", "sha256"))
        path, sha = f.text("path"), f.text("sha256", SHA256_HEX)
        blob = _BLOB.fullmatch(path)
        if not is_member_name(path) or (blob and blob.group(1) != sha):
            raise MalformedError(f"manifest: member name {path!r} is not allowed")
        members.append(Member(path, f.size("size"), sha))
    paths = [m.path for m in members]
    if paths != sorted(set(paths), key=member_sort_key):
        raise MalformedError("manifest: members are duplicated or not in canonical order")
    images = []
    for i, obj in enumerate(top.objects("images")):
        f = _Fields(obj, f"images[{i}]", ("ref", "digest", "mediaType", "size", "platforms", "blobs"),
                    ("sourceDigest",))
        images.append(Image(f.text("ref"), f.digest("digest"), f.text("mediaType"), f.size("size"),
                            f.strings("platforms"), f.strings("blobs", is_digest),
                            f.digest("sourceDigest") if "sourceDigest" in obj else None))
    charts = []
    for i, obj in enumerate(top.objects("charts")):
        f = _Fields(obj, f"charts[{i}]", ("name", "version", "digest", "path", "images"))
        charts.append(Chart(f.text("name"), f.text("version"), f.digest("digest"), f.text("path", _RELPATH),
                            f.strings("images")))
    manifest = BundleManifest(
        name=top.text("name", APP_NAME), version=top.text("version", SEMVER), created=top.text("created"),
        min_installer=top.text("minInstallerVersion", SEMVER), members=tuple(members),
        images=tuple(images), charts=tuple(charts),
        compose=tuple(_parse_file(o, f"compose[{i}]") for i, o in enumerate(top.objects("compose"))),
        files=tuple(_parse_file(o, f"files[{i}]") for i, o in enumerate(top.objects("files"))),
        platforms=top.strings("platforms"), expires=top.text("expires"),
        description=top.text("description", default=""), unpacked_size=top.size("unpackedSize"),
        secrets=top.strings("secrets", lambda s: ENV_NAME.fullmatch(s) is not None),
        external=tuple(_parse_external(top.objects("external"))),
        target=_target(top.text("target", default="")),
        **_parse_keys(doc.get("keys")),
        settings=tuple(_parse_setting(o, i) for i, o in enumerate(top.objects("settings"))),
        installer=_parse_installer(doc["installer"]) if "installer" in doc else None,
        delta_base=tuple((f.text("name", APP_NAME), f.text("version", SEMVER)) for f in (
            _Fields(o, f"deltaBase[{i}]", ("name", "version")) for i, o in enumerate(top.objects("deltaBase")))))
    for stamp in (manifest.created, manifest.expires):
        if stamp is not None:
            try:
                parse_time(stamp)
            except ValueError:
                raise MalformedError(f"manifest: time {stamp!r} is not YYYY-MM-DDTHH:MM:SSZ") from None
    if manifest.unpacked_size != sum(m.size for m in members):
        raise MalformedError("manifest: unpackedSize is not the sum of the member sizes")
    have = manifest.blob_digests | {d for d, _ in manifest.external}
    if len(manifest.external) != len({d for d, _ in manifest.external}) or (
            manifest.blob_digests & {d for d, _ in manifest.external}):
        raise MalformedError("manifest: external blobs are duplicated or also carried")
    needed = {d for i in images for d in (i.digest, *i.blobs)} | {c.digest for c in charts} | {
        f.digest for f in (*manifest.compose, *manifest.files)} | (
        {manifest.installer.digest} if manifest.installer else set())
    if needed - have:
        raise MalformedError(f"manifest: refers to blob(s) it does not carry: {sorted(needed - have)[0]}")
    return manifest


# -- writing ------------------------------------------------------------------------

def write_bundle(out: BinaryIO, manifest: bytes, signatures: bytes, members: Sequence[Member],
                 open_member: Callable[[Member], BinaryIO], *, level: int = 3, threads: int = 1,
                 progress: Callable[[int], None] | None = None) -> None:
    """Write the bundle stream. Member bytes are hashed on the way and must match.

    zstd output is identical for every `threads` >= 1 (but differs from threads=0), so the
    writer always uses the multi-threaded mode and bundles stay reproducible on any machine.
    """
    compressor = zstandard.ZstdCompressor(level=level, threads=max(1, threads), write_checksum=True)
    with compressor.stream_writer(out, closefd=False) as zout:
        for name, data in ((MANIFEST, manifest), (SIGNATURES, signatures)):
            zout.write(tarstream.header(name, len(data)) + data + b"\0" * tarstream.padding(len(data)))
        for member in members:
            zout.write(tarstream.header(member.path, member.size))
            h, size = hashlib.sha256(), 0
            with open_member(member) as src:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    zout.write(chunk)
                    if progress:
                        progress(len(chunk))
            if (size, h.hexdigest()) != (member.size, member.sha256):
                raise BundleError(f"{member.path} changed while it was written (cache corrupted?)")
            zout.write(b"\0" * tarstream.padding(size))
        zout.write(tarstream.END)


# -- reading ------------------------------------------------------------------------

class Sink(Protocol):
    """Where verified member bytes go. `begin` may return None to only hash them."""

    def begin(self, member: Member) -> Writable | None: ...

    def commit(self, member: Member) -> None: ...


class _Discard:
    def begin(self, member: Member) -> None:
        return None

    def commit(self, member: Member) -> None:
        pass


Authorize = Callable[[bytes, bytes], BundleManifest]


class _Stream:
    """Exact reads from the decompressed stream, with zstd errors turned into BundleErrors."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def read(self, n: int, what: str) -> bytes:
        try:
            first = self.stream.read(n)
        except zstandard.ZstdError as exc:
            raise BundleError(f"corrupt compressed data in {what}: {exc}") from None
        if len(first) == n:
            return first
        out = bytearray(first)
        while len(out) < n:
            try:
                chunk = self.stream.read(n - len(out))
            except zstandard.ZstdError as exc:
                raise BundleError(f"corrupt compressed data in {what}: {exc}") from None
            if not chunk:
                raise BundleError(f"the bundle is truncated: it ends inside {what}")
            out += chunk
        return bytes(out)


def _explain(block: bytes, expected: Member | None, known: dict[str, Member], seen: set[str]) -> str:
    if block == b"\0" * tarstream.BLOCK:
        return f"member {expected.path} is missing (the archive ends early)" if expected else "empty header"
    head = tarstream.describe(block)
    name = head.name
    if head.kind != "regular file":
        return f"member {name!r} is a {head.kind}; only regular files are allowed"
    if name.startswith("/") or ".." in name.split("/") or not (is_member_name(name) or name in (
            MANIFEST, SIGNATURES)):
        return f"member name {name!r} is not allowed"
    if name in seen:
        return f"member {name} appears twice"
    if name not in known:
        return f"member {name} is not listed in the manifest"
    if expected is None:
        return f"member {name} follows the end of the payload"
    if name != expected.path:
        return f"member {expected.path} is missing or out of order (found {name} in its place)"
    if head.size != expected.size:
        return f"member {name} is {head.size} bytes, the manifest says {expected.size}"
    return f"member {name} has a non-canonical tar header (mode, owner, time or format)"


def _first_member(tar: _Stream, name: str, limit: int) -> bytes:
    block = tar.read(tarstream.BLOCK, f"the {name} header")
    head = tarstream.describe(block)
    if head.name != name:
        if name == SIGNATURES and head.name not in (MANIFEST, SIGNATURES):
            raise UnsignedError(f"the bundle is not signed (member 2 is {head.name!r}, not {SIGNATURES})")
        raise BundleError(f"member 1 must be {MANIFEST}, found {head.name!r}" if name == MANIFEST
                          else f"member {head.name!r} is out of order (expected {name})")
    if head.size is None or head.size > limit:
        raise BundleError(f"{name} is {head.size} bytes, over the {limit}-byte limit")
    if block != tarstream.header(name, head.size):
        raise BundleError(f"member {name} has a non-canonical tar header (mode, owner, time or format)")
    data = tar.read(head.size, name)
    if tar.read(tarstream.padding(head.size), name).strip(b"\0"):
        raise BundleError(f"member {name} has non-zero padding")
    return data


DEFAULT_LIMITS = Limits()


def read_head(raw: BinaryIO, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, bytes]:
    """Only the manifest and signatures bytes, unverified (for inspect)."""
    _, stream = decompressing_reader(raw, limits.max_window)
    tar = _Stream(stream)
    manifest = _first_member(tar, MANIFEST, limits.max_manifest)
    return manifest, _first_member(tar, SIGNATURES, limits.max_signatures)


def read_bundle(raw: BinaryIO, authorize: Authorize, sink: Sink | None = None, *,
                limits: Limits = DEFAULT_LIMITS,
                progress: Callable[[int], None] | None = None) -> BundleManifest:
    """Stream-verify a bundle. Returns the manifest once every byte has been checked.

    `authorize(manifest_bytes, signatures_bytes)` decides trust and must raise if the
    bundle is not trusted; nothing past the signatures is read before it returns.
    `progress` is called with the number of compressed bytes consumed since its last call.
    """
    sink = sink or _Discard()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="satchel-hash") as hasher:
        return _read_bundle(raw, authorize, sink, limits, progress, hasher)


def _read_bundle(raw: BinaryIO, authorize: Authorize, sink: Sink, limits: Limits,
                 progress: Callable[[int], None] | None, hasher: ThreadPoolExecutor) -> BundleManifest:
    frame, stream = decompressing_reader(raw, limits.max_window)
    tar = _Stream(stream)
    manifest_bytes = _first_member(tar, MANIFEST, limits.max_manifest)
    signatures = _first_member(tar, SIGNATURES, limits.max_signatures)
    manifest = authorize(manifest_bytes, signatures)
    if manifest.unpacked_size > limits.max_unpacked:
        raise BundleError(f"the bundle unpacks to {manifest.unpacked_size} bytes, over the "
                          f"{limits.max_unpacked}-byte limit")
    known = {m.path: m for m in manifest.members}
    seen: set[str] = set()
    reported = 0

    def report() -> None:
        nonlocal reported
        if progress:
            progress(frame.offset - reported)
            reported = frame.offset

    for member in manifest.members:
        block = tar.read(tarstream.BLOCK, f"the header of {member.path}")
        if block != tarstream.header(member.path, member.size):
            raise BundleError(_explain(block, member, known, seen))
        seen.add(member.path)
        dst = sink.begin(member)
        h, left = hashlib.sha256(), member.size

        def consume(chunk: bytes, h: Any = h, dst: Writable | None = dst) -> None:
            h.update(chunk)
            if dst is not None:
                dst.write(chunk)

        # Hash and write one chunk while the next is decompressed (both release the GIL);
        # at most two chunks are in flight, in order.
        pending: Future[None] | None = None
        while left:
            chunk = tar.read(min(CHUNK, left), member.path)
            left -= len(chunk)
            if pending is not None:
                pending.result()
            pending = hasher.submit(consume, chunk)
        if pending is not None:
            pending.result()
        if tar.read(tarstream.padding(member.size), member.path).strip(b"\0"):
            raise BundleError(f"member {member.path} has non-zero padding")
        if h.hexdigest() != member.sha256:
            raise BundleError(f"member {member.path}: sha256 mismatch, its content was altered")
        sink.commit(member)
        report()
    end = tar.read(len(tarstream.END), "the end of the archive")
    if end != tarstream.END:
        raise BundleError(_explain(end[:tarstream.BLOCK], None, known, seen))
    try:
        extra = stream.read(1)
    except zstandard.ZstdError as exc:
        raise BundleError(f"corrupt compressed data after the archive: {exc}") from None
    if extra:
        raise BundleError("trailing data after the end of the tar archive")
    frame.assert_at_end()
    report()
    return manifest


