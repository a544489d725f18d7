"""Push a release's images and charts from the content store into a registry, by digest,
with the one copy routine (bundler/oci/copy.py); then the tag."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from bundler.manifest import BundleManifest
from bundler.oci.copy import copy_blobs, put_manifests, walk
from bundler.oci.layout import Layout, LayoutEnd
from bundler.oci.model import MAX_MANIFEST_BYTES, OCI_MANIFEST, Descriptor
from bundler.oci.refs import Reference
from bundler.oci.registry import Endpoint
from bundler.progress import QUIET, Reporter

from . import faults
from .errors import StoreDamaged

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

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        """Make a blob of source_repo one of repo's too, without sending it; False if the
        registry would rather have it uploaded."""

    def push_manifest(self, repo: str, reference: str, desc: Descriptor, body: bytes) -> None: ...


class _Repository:
    """One repository of a registry as the sink of a copy (bundler/oci/copy.py). `placed` is
    shared by the repositories of one push: where each blob is known to be, so a layer that
    several images share is sent once and mounted into the others' repositories."""

    def __init__(self, client: RegistrySink, repo: str, placed: dict[str, str]) -> None:
        self.client, self.repo, self.placed = client, repo, placed

    def has_blob(self, desc: Descriptor) -> bool:
        if not self.client.has_blob(self.repo, desc.digest):
            return False
        self.placed.setdefault(desc.digest, self.repo)
        return True

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        source = self.placed.get(desc.digest)
        if source and self.client.mount_blob(self.repo, desc.digest, source):
            getattr(stream, "skip", lambda n: None)(desc.size)     # the progress bar's count
        else:
            self.client.push_blob(self.repo, desc, stream)
        self.placed.setdefault(desc.digest, self.repo)

    def put_manifest(self, desc: Descriptor, body: bytes) -> None:
        self.client.push_manifest(self.repo, desc.digest, desc, body)


class VerifiedEnd(LayoutEnd):
    """The store as the source of a push, each blob re-hashed before it is sent: blobs at
    rest (a rollback's) may have changed since they were verified."""

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        if not self.store.intact(desc):
            raise StoreDamaged(f"store blob {desc.digest} is damaged or missing; {StoreDamaged.FIX}")
        return super().open_blob(desc)


def push_release(store: Layout, client: RegistrySink, manifest: BundleManifest, concurrency: int = 4,
                 at_rest: bool = False, reporter: Reporter = QUIET) -> int:
    """Returns the number of blobs uploaded or mounted (0 when the registry already had everything).
    `at_rest`: the blobs were not verified by this run, so each one sent is hashed first."""
    local = (VerifiedEnd if at_rest else LayoutEnd)(store, "the content store")
    uploaded, placed = 0, dict[str, str]()
    for repo, tag, root in _artifacts(manifest):
        graph = walk(root, store.read_small(root, MAX_MANIFEST_BYTES), local)
        remote = _Repository(client, repo, placed)
        uploaded += copy_blobs(graph, local, remote, concurrency, bar=reporter.bar, label=f"pushing {repo}")
        faults.point("during-push")
        put_manifests(graph, remote)
        if tag:
            client.push_manifest(repo, tag, root, graph.manifests[-1][1])
    return uploaded
