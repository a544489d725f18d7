"""Push a release's images and charts from the content store into a registry, by digest.

Blobs first (skipping those the registry has, several at a time), then manifests
children-first, then the tag, so the registry never holds a manifest whose blobs are
missing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Protocol

from bundler.format import BundleManifest
from bundler.oci.layout import Layout
from bundler.oci.model import INDEX_TYPES, MANIFEST_TYPES, MAX_MANIFEST_BYTES, OCI_MANIFEST, Descriptor, children
from bundler.oci.refs import Reference
from bundler.oci.registry import Endpoint

from . import faults

CHART_REPOSITORY = "charts/{name}"


def chart_repository(name: str) -> str:
    return CHART_REPOSITORY.format(name=name)


def _artifacts(manifest: BundleManifest) -> list[tuple[str, str | None, Descriptor]]:
    """(repository, tag, root) of every image and chart. Charts go to charts/NAME with their
    version as tag (Helm's convention, `+` written `_`), so `helm pull oci://` finds them."""
    sizes = manifest.all_blobs
    out: list[tuple[str, str | None, Descriptor]] = []
    for image in manifest.images:
        ref = Reference.parse(image.ref)
        out.append((ref.repository, ref.tag, Descriptor(image.media_type, image.digest, sizes[image.digest])))
    for chart in manifest.charts:
        out.append((chart_repository(chart.name), chart.version.replace("+", "_"),
                    Descriptor(OCI_MANIFEST, chart.digest, sizes[chart.digest])))
    return out


class RegistrySink(Protocol):
    """Where a release's images go: the registry client, or an in-memory one in tests."""

    endpoint: Endpoint

    def has_blob(self, repo: str, digest: str) -> bool: ...

    def push_blob(self, repo: str, desc: Descriptor, src: BinaryIO) -> None: ...

    def push_manifest(self, repo: str, reference: str, desc: Descriptor, body: bytes) -> None: ...


def push_release(store: Layout, client: RegistrySink, manifest: BundleManifest, concurrency: int = 4) -> int:
    """Returns the number of blobs uploaded (0 when the registry already had everything)."""
    uploaded = 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for repo, tag, root in _artifacts(manifest):
            manifests = [(root, store.read_small(root, MAX_MANIFEST_BYTES))]
            if root.media_type in INDEX_TYPES:
                manifests = [(d, store.read_small(d, MAX_MANIFEST_BYTES))
                             for d in children(root.media_type, manifests[0][1], repo)] + manifests
            blobs = {d.digest: d for desc, body in manifests if desc.media_type in MANIFEST_TYPES
                     for d in children(desc.media_type, body, repo)}

            def upload(desc: Descriptor, repo: str = repo) -> bool:
                if client.has_blob(repo, desc.digest):
                    return False
                with store.open_blob(desc.digest) as fh:
                    client.push_blob(repo, desc, fh)
                return True

            uploaded += sum(pool.map(upload, blobs.values()))
            faults.point("during-push")
            for desc, body in manifests:
                client.push_manifest(repo, desc.digest, desc, body)
            if tag:
                client.push_manifest(repo, tag, root, manifests[-1][1])
    return uploaded
