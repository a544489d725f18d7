"""Images pulled from a registry through the distribution API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ..errors import NotFoundError, SpecError
from ..oci.model import Descriptor
from ..oci.refs import Reference
from ..oci.registry import RegistryClient


class RegistrySource:
    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client, self.ref = client, ref
        self.description = f"registry {ref}"

    def root(self) -> tuple[Descriptor, bytes]:
        try:
            return self.client.get_manifest(self.ref.repository, self.ref.digest or self.ref.tag or "latest")
        except NotFoundError:
            raise SpecError(f"image {self.ref} does not exist in its registry") from None

    def manifest(self, desc: Descriptor) -> bytes:
        return self.client.get_manifest(self.ref.repository, desc.digest)[1]

    @contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[BinaryIO]:
        with self.client.open_blob(self.ref.repository, desc) as stream:
            yield stream

    def close(self) -> None:
        self.client.session.close()
