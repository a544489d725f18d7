"""Images read from an OCI image layout directory (`source: oci:PATH`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from ..errors import SpecError
from ..oci.layout import REF_ANNOTATION, Layout
from ..oci.model import MAX_MANIFEST_BYTES, ROOT_TYPES, Descriptor
from ..oci.refs import Reference

CONTAINERD_NAME = "io.containerd.image.name"


def pick(manifests: list[Descriptor], ref: Reference, where: str,
         names: dict[Descriptor, list[str]] | None = None) -> Descriptor:
    """The entry whose name (default: its ref annotations) matches the reference, or the only one."""
    if names is None:
        names = {d: [v for k, v in d.annotations.items() if k in (REF_ANNOTATION, CONTAINERD_NAME)]
                 for d in manifests}
    candidates = [d for d in manifests if d.media_type in ROOT_TYPES]
    for desc in candidates:
        for name in names.get(desc, []):
            if name in (ref.tag, str(ref)) or _same(name, ref):
                return desc
    if ref.digest:
        for desc in candidates:
            if desc.digest == ref.digest:
                return desc
    if len(candidates) == 1:
        return candidates[0]
    found = sorted({n for d in candidates for n in names.get(d, [])})
    raise SpecError(f"{where} has no image named {ref} (it has: {', '.join(found) or 'unnamed images'})")


def _same(name: str, ref: Reference) -> bool:
    try:
        other = Reference.parse(name)
    except SpecError:
        return False
    return (other.name, other.tag) == (ref.name, ref.tag)


class LayoutSource:
    def __init__(self, path: Path, ref: Reference) -> None:
        self.layout = Layout.open(path)
        self.ref = ref
        self.description = f"OCI layout {path}"

    def root(self) -> tuple[Descriptor, bytes]:
        desc = pick(self.layout.index(), self.ref, self.description)
        return desc, self.manifest(desc)

    def manifest(self, desc: Descriptor) -> bytes:
        return self.layout.read_small(desc, MAX_MANIFEST_BYTES)

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]:
        return self.layout.open_blob(desc.digest)

    def close(self) -> None:
        pass
