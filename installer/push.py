"""Push a release's images from the content store into a registry, by digest.

Blobs first (skipping those the registry has, several at a time), then manifests
children-first, then the tag, so the registry never holds a manifest whose blobs are
missing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bundler.format import BundleManifest
from bundler.oci.layout import Layout
from bundler.oci.model import INDEX_TYPES, MANIFEST_TYPES, MAX_MANIFEST_BYTES, Descriptor, children
from bundler.oci.refs import Reference
from bundler.oci.registry import RegistryClient


def push_release(store: Layout, client: RegistryClient, manifest: BundleManifest, concurrency: int = 4) -> int:
    """Returns the number of blobs uploaded (0 when the registry already had everything)."""
    sizes = manifest.all_blobs
    uploaded = 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for image in manifest.images:
            ref = Reference.parse(image.ref)
            root = Descriptor(image.media_type, image.digest, sizes[image.digest])
            manifests = [(root, store.read_small(root, MAX_MANIFEST_BYTES))]
            if root.media_type in INDEX_TYPES:
                manifests = [(d, store.read_small(d, MAX_MANIFEST_BYTES))
                             for d in children(root.media_type, manifests[0][1], image.ref)] + manifests
            blobs = {d.digest: d for desc, body in manifests if desc.media_type in MANIFEST_TYPES
                     for d in children(desc.media_type, body, image.ref)}

            def upload(desc: Descriptor, repo: str = ref.repository) -> bool:
                if client.has_blob(repo, desc.digest):
                    return False
                with store.open_blob(desc.digest) as fh:
                    client.push_blob(repo, desc, fh)
                return True

            uploaded += sum(pool.map(upload, blobs.values()))
            for desc, body in manifests:
                client.push_manifest(ref.repository, desc.digest, desc, body)
            if ref.tag:
                client.push_manifest(ref.repository, ref.tag, root, manifests[-1][1])
    return uploaded
