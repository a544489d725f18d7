"""The image source protocol, and a helper for sources that synthesise their manifests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from io import BytesIO
from typing import BinaryIO, Protocol

from ..errors import BundleError
from ..oci.model import MAX_MANIFEST_BYTES, OCI_CONFIG, OCI_MANIFEST, Descriptor


class ImageSource(Protocol):
    """Where one image comes from. Manifests come back verified; blobs are streamed and
    verified by the sink that stores them."""

    description: str

    def root(self) -> tuple[Descriptor, bytes]: ...

    def manifest(self, desc: Descriptor) -> bytes: ...

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]: ...

    def close(self) -> None: ...


def check_manifest(desc: Descriptor, body: bytes, where: str) -> bytes:
    if len(body) > MAX_MANIFEST_BYTES or Descriptor.for_bytes(desc.media_type, body).digest != desc.digest:
        raise BundleError(f"{where}: manifest {desc.digest} does not match its digest")
    return body


class SynthesizedImage:
    """An image whose manifest was made here; layers come from openers (files, tar members)."""

    def __init__(self, description: str, config: bytes,
                 layers: list[tuple[Descriptor, Callable[[], BinaryIO]]]) -> None:
        self.description = description
        self._small: dict[str, bytes] = {}
        self._openers = {desc.digest: opener for desc, opener in layers}
        config_desc = self._add(OCI_CONFIG, config)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc.to_json(),
                    "layers": [desc.to_json() for desc, _ in layers]}
        self._root = self._add(OCI_MANIFEST, json.dumps(manifest, sort_keys=True).encode())

    def _add(self, media_type: str, data: bytes) -> Descriptor:
        desc = Descriptor.for_bytes(media_type, data)
        self._small[desc.digest] = data
        return desc

    def root(self) -> tuple[Descriptor, bytes]:
        return self._root, self._small[self._root.digest]

    def manifest(self, desc: Descriptor) -> bytes:
        return self._small[desc.digest]

    @contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[BinaryIO]:
        if desc.digest in self._small:
            yield BytesIO(self._small[desc.digest])
            return
        with self._openers[desc.digest]() as fh:
            yield fh

    def close(self) -> None:
        pass
