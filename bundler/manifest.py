"""The bundle manifest (format v1): its model, and the strict parser the reader trusts it
through. Every member of a bundle is pinned here by path, size and sha256; every artifact
(image, chart, compose file, file, kit) by digest (docs/FORMAT.md)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from signing import canonical
from signing.errors import KeyFileError, MalformedError
from signing.grammar import APP_NAME, ENV_NAME, KEY_ID, SEMVER, SHA256_HEX, parse_time
from signing.keys import VerifyKey

from . import targets
from .errors import SpecError
from .grants import Grant
from .lifecycle import Lifecycle
from .oci.digest import is_digest
from .requirements import Requirement
from .requirements import parse as parse_requirements
from .requirements import to_json as requirements_json
from .sbom import Sbom
from .settings import Setting
from .switching import Switch

FORMAT = "satchel.bundle/v1"
LAYOUT_MEMBERS = ("oci-layout", "index.json")
_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_RELPATH = re.compile(r"(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._/-]{1,255}")



def is_member_name(path: str) -> bool:
    return path in LAYOUT_MEMBERS or _BLOB.fullmatch(path) is not None


def member_sort_key(path: str) -> tuple[int, str]:
    return (LAYOUT_MEMBERS.index(path), "") if path in LAYOUT_MEMBERS else (len(LAYOUT_MEMBERS), path)


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
    lifecycle: Lifecycle = field(default_factory=Lifecycle)   # data volumes, hooks, health policy
    switch: Switch | None = None       # how a release replaces the one before (bundler.switching)
    requirements: tuple[Requirement, ...] = ()   # what a host needs (bundler.requirements)
    grants: tuple[Grant, ...] = ()     # what the compose files grant over the host (bundler.grants)
    sboms: tuple[Sbom, ...] = ()       # a CycloneDX SBOM blob per image and platform (bundler.sbom)
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
        if self.switch:
            doc["switch"] = self.switch.to_json()
        if self.requirements:
            doc["requirements"] = requirements_json(self.requirements)
        if self.grants:
            doc["grants"] = [g.to_json() for g in self.grants]
        if self.sboms:
            doc["sboms"] = [s.to_json() for s in self.sboms]
        return doc | self.lifecycle.to_json()

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


T = TypeVar("T")


def _declared(parse: Callable[[Any], T], obj: Any) -> T:
    """A declaration parsed by its own module (the one satchel.yaml uses), its errors as the
    manifest's."""
    try:
        return parse(obj)
    except (SpecError, ValueError) as exc:
        raise MalformedError(f"manifest: {exc}") from None


def _listed(parse: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    def each(obj: Any) -> tuple[T, ...]:
        if not isinstance(obj, list):
            raise ValueError("expected a list")
        return tuple(parse(item) for item in obj)
    return each


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
                   "external", "deltaBase", "target", "keys", "settings", "installer", "data", "hooks", "health",
                   "switch", "requirements", "grants", "sboms"))
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
        settings=tuple(_declared(partial(Setting.from_json, where=f"settings[{i}]"), o)
                       for i, o in enumerate(top.objects("settings"))),
        installer=_parse_installer(doc["installer"]) if "installer" in doc else None,
        lifecycle=_declared(Lifecycle.from_json, doc),
        switch=_declared(Switch.from_json, doc["switch"]) if "switch" in doc else None,
        requirements=_declared(parse_requirements, doc.get("requirements")),
        grants=_declared(_listed(Grant.from_json), doc.get("grants", [])),
        sboms=_declared(_listed(Sbom.from_json), doc.get("sboms", [])),
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
