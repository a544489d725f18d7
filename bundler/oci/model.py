"""Descriptors, manifests and indexes: the one image abstraction everything else uses.

An image is a graph of content-addressed blobs. A root descriptor names either an index
(several platforms) or an image manifest, which names a config blob and layer blobs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import BundleError
from .digest import check_digest, sha256_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ROOT_TYPES = INDEX_TYPES | MANIFEST_TYPES
MAX_MANIFEST_BYTES = 4 << 20  # as in the distribution spec's recommended limit


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(*parts)

    @classmethod
    def from_json(cls, obj: Any) -> Platform | None:
        if not isinstance(obj, dict) or not obj.get("os") or not obj.get("architecture"):
            return None
        return cls(str(obj["os"]), str(obj["architecture"]), str(obj.get("variant") or ""))

    def matches(self, wanted: Platform) -> bool:
        """A wanted platform without a variant matches every variant."""
        return (self.os, self.architecture) == (wanted.os, wanted.architecture) and (
            not wanted.variant or self.variant == wanted.variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data))

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise BundleError(f"{where}: descriptor is not an object")
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError(f"{where}: descriptor size {size!r} is invalid")
        annotations = obj.get("annotations") or {}
        return cls(str(obj.get("mediaType") or ""), check_digest(obj.get("digest"), f"{where}: digest"),
                   size, Platform.from_json(obj.get("platform")),
                   {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = {"os": self.platform.os, "architecture": self.platform.architecture}
            if self.platform.variant:
                out["platform"]["variant"] = self.platform.variant
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def parse_json(body: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{where}: not a JSON object")
    return doc


def media_type_of(body: bytes, declared: str, where: str) -> str:
    """The media type a manifest body really has (the body's own field wins if present)."""
    doc = parse_json(body, where)
    inner = doc.get("mediaType")
    if isinstance(inner, str) and inner:
        return inner
    if declared in ROOT_TYPES:
        return declared
    return OCI_INDEX if "manifests" in doc else OCI_MANIFEST


def children(media_type: str, body: bytes, where: str) -> list[Descriptor]:
    """Descriptors a manifest or index points at (config first, then layers)."""
    doc = parse_json(body, where)
    if media_type in INDEX_TYPES:
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise BundleError(f"{where}: index has no manifests list")
        return [Descriptor.from_json(d, where) for d in items]
    if media_type in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list) or "config" not in doc:
            raise BundleError(f"{where}: manifest lacks config or layers")
        return [Descriptor.from_json(doc["config"], where)] + [Descriptor.from_json(d, where) for d in layers]
    raise BundleError(f"{where}: unsupported manifest media type {media_type!r}")


def config_platform(config: bytes, where: str) -> Platform | None:
    return Platform.from_json(parse_json(config, where))
