"""One copy routine for images, source -> sink by digest (go-containerregistry's pattern):
`satchel build` pulls any source into its cache with it, and `satchel install` pushes the
store into a registry with it. Blobs first, several at a time, skipping those the sink has;
then manifests children-first, so a sink never holds a manifest whose blobs are missing."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast

from ..errors import SpecError
from .model import INDEX_TYPES, Descriptor, children


class Source(Protocol):
    description: str

    def manifest(self, desc: Descriptor) -> bytes:
        """The manifest's bytes, checked against its digest."""

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]: ...


class Sink(Protocol):
    def has_blob(self, desc: Descriptor) -> bool: ...

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        """Store the stream; it must hash to desc."""

    def put_manifest(self, desc: Descriptor, body: bytes) -> None: ...


@dataclass(frozen=True)
class Graph:
    """An image (or index) and everything it refers to."""

    manifests: tuple[tuple[Descriptor, bytes], ...]   # children first, the root last
    blobs: tuple[Descriptor, ...]                     # configs and layers, each once
    order: tuple[Descriptor, ...]                     # root, then each manifest, its config, its layers


def walk(root: Descriptor, body: bytes, source: Source) -> Graph:
    where = source.description
    manifests = [(d, source.manifest(d)) for d in children(root.media_type, body, where)] \
        if root.media_type in INDEX_TYPES else []
    seen: dict[str, Descriptor] = {root.digest: root}
    blobs: dict[str, Descriptor] = {}
    for desc, manifest in manifests or [(root, body)]:
        if desc.media_type in INDEX_TYPES:
            raise SpecError(f"{where}: nested indexes are not supported")
        seen.setdefault(desc.digest, desc)
        for child in children(desc.media_type, manifest, where):
            seen.setdefault(child.digest, child)
            blobs.setdefault(child.digest, child)
    return Graph((*manifests, (root, body)), tuple(blobs.values()), tuple(seen.values()))


def copy_blobs(graph: Graph, source: Source, sink: Sink, concurrency: int = 1,
               bar: Callable[[int, str], AbstractContextManager[Callable[[int], None]]] | None = None,
               label: str = "copying") -> int:
    """Every blob the sink lacks; returns how many were copied. The sink is asked about all
    blobs at once (one round of parallel requests to a registry), then they are copied."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        missing = [d for d, have in zip(graph.blobs, pool.map(sink.has_blob, graph.blobs), strict=True) if not have]
        progress = bar(sum(d.size for d in missing), label) if bar else nullcontext(lambda n: None)
        with progress as tick:

            def one(desc: Descriptor) -> None:
                with source.open_blob(desc) as stream:
                    sink.put_blob(desc, cast(BinaryIO, _Counted(stream, tick)))

            list(pool.map(one, missing))
    return len(missing)


class _Counted:
    """A blob stream that reports every byte read from it as it goes (so that one large layer
    moves the bar too); a retried upload seeks back, and the bytes sent again are taken back."""

    def __init__(self, raw: BinaryIO, tick: Callable[[int], None]) -> None:
        self.raw, self.tick, self.done = raw, tick, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.done += len(data)
        self.tick(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = self.raw.seek(offset, whence)
        if pos < self.done:
            self.tick(pos - self.done)
            self.done = pos
        return pos

    def tell(self) -> int:
        return self.raw.tell()

    def skip(self, n: int) -> None:
        """Bytes the sink placed without reading them (a hard link): done all the same."""
        self.done += n
        self.tick(n)


def put_manifests(graph: Graph, sink: Sink) -> None:
    for desc, body in graph.manifests:
        sink.put_manifest(desc, body)
