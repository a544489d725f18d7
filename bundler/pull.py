"""Copy one image from a source into the build cache: source -> platform filter -> copy."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .errors import SpecError
from .oci.copy import copy_blobs, put_manifests, walk
from .oci.layout import Layout, LayoutEnd
from .oci.model import (
    INDEX_TYPES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Platform,
    children,
    config_platform,
    parse_json,
)
from .sources.base import ImageSource


@dataclass(frozen=True)
class Pulled:
    root: Descriptor
    blobs: tuple[Descriptor, ...]      # root first, then manifests, configs, layers; no repeats
    platforms: tuple[str, ...]
    source_digest: str | None          # the source's root digest, when filtering changed it


def _filter_index(body: bytes, kept: list[Descriptor]) -> bytes:
    doc = parse_json(body, "index")
    doc["manifests"] = [d.to_json() for d in kept]
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _wanted(platform: Platform | None, wanted: tuple[Platform, ...]) -> bool:
    return not wanted or (platform is not None and any(platform.matches(w) for w in wanted))


Bar = Callable[[int, str], AbstractContextManager[Callable[[int], None]]]


def pull(source: ImageSource, store: Layout, wanted: tuple[Platform, ...], *, concurrency: int = 1,
         bar: Bar | None = None) -> Pulled:
    root, body = source.root()
    where = source.description
    platforms: list[str] = []
    source_digest = None
    if root.media_type in INDEX_TYPES:
        entries = children(root.media_type, body, where)
        kept = [d for d in entries if _wanted(d.platform, wanted)]
        if not kept:
            have = ", ".join(sorted({str(d.platform) for d in entries if d.platform})) or "none"
            raise SpecError(f"{where}: no manifest for {', '.join(map(str, wanted))} (has {have})")
        if kept != entries:
            source_digest = root.digest
            body = _filter_index(body, kept)
            root = Descriptor.for_bytes(root.media_type, body)
        platforms = [str(d.platform) for d in kept if d.platform]
    graph = walk(root, body, source)
    cache = LayoutEnd(store, where)
    if root.media_type not in INDEX_TYPES:
        # A single image: its platform is in its config. Checked from the stored (verified)
        # config before any layer is fetched.
        config = graph.blobs[0]
        if not store.has(config):
            with source.open_blob(config) as stream:
                cache.put_blob(config, stream)
        platform = config_platform(store.read_small(config, MAX_MANIFEST_BYTES), where)
        if not _wanted(platform, wanted):
            raise SpecError(f"{where} is {platform or 'of unknown platform'}, not {', '.join(map(str, wanted))}")
        platforms = [str(platform)] if platform else []
    copy_blobs(graph, source, cache, concurrency, bar, "pulling")
    put_manifests(graph, cache)
    return Pulled(root, graph.order, tuple(platforms), source_digest)
