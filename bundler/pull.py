"""Copy one image from a source into a layout store: source -> platform filter -> sink."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from .errors import SpecError
from .oci.layout import Layout
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


@contextmanager
def _no_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


def _wanted(platform: Platform | None, wanted: tuple[Platform, ...]) -> bool:
    return not wanted or (platform is not None and any(platform.matches(w) for w in wanted))


Bar = Callable[[int, str], AbstractContextManager[Callable[[int], None]]]


def pull(source: ImageSource, store: Layout, wanted: tuple[Platform, ...], *, concurrency: int = 1,
         bar: Bar | None = None) -> Pulled:
    root, body = source.root()
    where = source.description
    blobs: dict[str, Descriptor] = {}
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
        manifests = [(d, source.manifest(d)) for d in kept]
        platforms = [str(d.platform) for d in kept if d.platform]
    else:
        manifests = [(root, body)]
    store.put_bytes(root.media_type, body)
    blobs[root.digest] = root
    layers: list[Descriptor] = []
    for desc, manifest in manifests:
        if desc.media_type in INDEX_TYPES:
            raise SpecError(f"{where}: nested indexes are not supported")
        store.put_bytes(desc.media_type, manifest)
        blobs.setdefault(desc.digest, desc)
        config, *image_layers = children(desc.media_type, manifest, where)
        if not store.has(config):
            with source.open_blob(config) as stream:
                store.ingest(stream, config, f"{where}: config")
        blobs.setdefault(config.digest, config)
        if desc is root:
            platform = config_platform(store.read_small(config, MAX_MANIFEST_BYTES), where)
            if not _wanted(platform, wanted):
                raise SpecError(f"{where} is {platform or 'of unknown platform'}, "
                                f"not {', '.join(map(str, wanted))}")
            platforms = [str(platform)] if platform else []
        for layer in image_layers:
            if layer.digest not in blobs:
                blobs[layer.digest] = layer
                layers.append(layer)

    missing = [layer for layer in layers if not store.has(layer)]

    def fetch(layer: Descriptor) -> Descriptor:
        with source.open_blob(layer) as stream:
            return store.ingest(stream, layer, f"{where}: layer")

    with (bar or _no_bar)(sum(layer.size for layer in missing), "pulling") as tick, \
            ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for done in pool.map(fetch, missing):
            tick(done.size)
    return Pulled(root, tuple(blobs.values()), tuple(platforms), source_digest)
