"""satchel build: spec -> pulled images, charts and files in a local cache -> signed bundle."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from signing import envelope
from signing.keys import SigningKey

from . import __version__ as satchel_version
from . import format as bundle_format
from .charts import pack_chart
from .discover import chart_images, compose_images
from .errors import EnvironmentProblem, SpecError
from .oci.layout import OCI_LAYOUT, REF_ANNOTATION, Layout, fsync_dir
from .oci.model import FILE_BLOB, Descriptor, Platform
from .oci.refs import Reference, is_loopback
from .oci.registry import Endpoint, RegistryClient
from .progress import QUIET, Reporter
from .pull import Pulled, pull
from .sources.archive import ArchiveSource
from .sources.base import ImageSource
from .sources.directory import DirectorySource
from .sources.docker import DockerSource
from .sources.layout import LayoutSource
from .sources.registry import RegistrySource
from .spec import ImageSpec, Spec

_DURATION = re.compile(r"(\d+)([dhm])")
EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class BuildOptions:
    cache: Path
    level: int = 3
    threads: int = os.cpu_count() or 1
    concurrency: int = 4


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "satchel"


def _created(now: datetime | None) -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        if not epoch.isdigit():
            raise SpecError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds")
        return bundle_format.format_time(datetime.fromtimestamp(int(epoch), UTC))
    return bundle_format.format_time(now or datetime.now(UTC))


def _expires(value: str | None, created: str) -> str | None:
    if value is None:
        return None
    m = _DURATION.fullmatch(value)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        when = bundle_format.parse_time(created) + timedelta(**{unit: int(m.group(1))})
        return bundle_format.format_time(when)
    try:
        return bundle_format.format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise SpecError(f"expires: {value!r} is neither a time (2027-01-31T00:00:00Z) nor a "
                        "duration (365d)") from None


class _Clients:
    """One registry client per host, sharing tokens across images; thread-safe creation."""

    def __init__(self, spec: Spec) -> None:
        self.spec, self._clients, self._lock = spec, dict[str, RegistryClient](), threading.Lock()

    def get(self, host: str) -> RegistryClient:
        with self._lock:
            if host not in self._clients:
                opts = self.spec.registries.get(host)
                self._clients[host] = RegistryClient(Endpoint(
                    host, insecure=bool(opts and opts.insecure) or is_loopback(host),
                    ca_file=str(self.spec.base / opts.ca_file) if opts and opts.ca_file else None))
            return self._clients[host]


def image_list(spec: Spec) -> list[ImageSpec]:
    """Spec images, plus every image a compose file or chart names (pulled from its registry)."""
    images = {str(i.ref): i for i in spec.images}
    discovered = [(img, f"compose file {p}") for p in spec.compose for img in compose_images(spec.base / p)]
    discovered += [(img, f"chart {c}") for c in spec.charts for img in chart_images(spec.base / c)]
    for text, origin in discovered:
        try:
            ref = Reference.parse(text)
        except SpecError as exc:
            raise SpecError(f"{origin}: {exc}") from None
        images.setdefault(str(ref), ImageSpec(ref, text))
    return [images[k] for k in sorted(images)]


def open_source(image: ImageSpec, clients: _Clients, workdir: Path, created: str) -> ImageSource:
    if image.source == "registry":
        return RegistrySource(clients.get(image.ref.registry), image.ref)
    if image.source == "docker":
        return DockerSource(image.text, image.ref, workdir)
    assert image.path is not None
    if image.source == "oci":
        return LayoutSource(image.path, image.ref)
    if image.source == "archive":
        return ArchiveSource(image.path, image.ref)
    platform = image.options.get("platform") or Platform("linux", "amd64")
    mtime = int(bundle_format.parse_time(created).timestamp()) if "SOURCE_DATE_EPOCH" in os.environ else 0
    return DirectorySource(image.path, platform, image.options, workdir, mtime,
                           created if mtime else EPOCH)


def _file(spec: Spec, store: Layout, rel: str, what: str) -> bundle_format.File:
    try:
        with (spec.base / rel).open("rb") as fh:
            desc = store.ingest(fh)
    except FileNotFoundError:
        raise SpecError(f"{what} {rel} does not exist (paths are relative to the spec)") from None
    except IsADirectoryError:
        raise SpecError(f"{what} {rel} is a directory; list files") from None
    return bundle_format.File(rel, desc.digest, desc.size)


def build(spec: Spec, output: Path, keys: Sequence[SigningKey], options: BuildOptions,
          reporter: Reporter = QUIET, now: datetime | None = None) -> bundle_format.BundleManifest:
    if not keys:
        raise SpecError("a bundle needs at least one signing key (--key NAME.key)")
    created = _created(now)
    store = Layout.create(options.cache / "oci")
    workdir = options.cache / "tmp"
    clients = _Clients(spec)
    images = image_list(spec)
    pulled: list[tuple[ImageSpec, Pulled]] = []
    for image in images:
        reporter.step(f"pulling {image.ref} from {image.source}")
        source = open_source(image, clients, workdir, created)
        try:
            pulled.append((image, pull(source, store, image.platforms or spec.platforms,
                                       concurrency=options.concurrency if image.source == "registry" else 1)))
        finally:
            source.close()
    mtime = int(bundle_format.parse_time(created).timestamp()) if "SOURCE_DATE_EPOCH" in os.environ else 0
    charts = []
    chart_blobs: list[Descriptor] = []
    for rel in spec.charts:
        packed = pack_chart(spec.base / rel, store, mtime)
        chart_blobs += packed.blobs
        refs = sorted({str(Reference.parse(i)) for i in chart_images(spec.base / rel)})
        charts.append(bundle_format.Chart(packed.name, packed.version, packed.manifest.digest, rel, tuple(refs)))
    compose = tuple(_file(spec, store, rel, "compose file") for rel in spec.compose)
    files = tuple(_file(spec, store, rel, "file") for rel in spec.files)

    index = [Descriptor(p.root.media_type, p.root.digest, p.root.size,
                        annotations={REF_ANNOTATION: str(i.ref)}) for i, p in pulled]
    index += [Descriptor(c.media_type, c.digest, c.size, annotations={REF_ANNOTATION: f"charts/{ch.name}:{ch.version}"})
              for ch, c in ((ch, next(b for b in chart_blobs if b.digest == ch.digest)) for ch in charts)]
    index.sort(key=lambda d: d.annotations[REF_ANNOTATION])
    index_bytes = _index_bytes(index)
    blobs: dict[str, int] = {}
    for _, p in pulled:
        blobs.update({b.digest: b.size for b in p.blobs})
    blobs.update({b.digest: b.size for b in chart_blobs})
    blobs.update({f.digest: f.size for f in (*compose, *files)})
    members = [bundle_format.Member("oci-layout", len(OCI_LAYOUT), Descriptor.for_bytes("", OCI_LAYOUT).digest[7:]),
               bundle_format.Member("index.json", len(index_bytes), Descriptor.for_bytes("", index_bytes).digest[7:])]
    members += [bundle_format.Member(f"blobs/sha256/{d[7:]}", s, d[7:]) for d, s in sorted(blobs.items())]
    manifest = bundle_format.BundleManifest(
        name=spec.name, version=spec.version, created=created, min_installer=satchel_version,
        members=tuple(members), description=spec.description,
        images=tuple(bundle_format.Image(str(i.ref), p.root.digest, p.root.media_type,
                                         sum(b.size for b in p.blobs), p.platforms,
                                         tuple(b.digest for b in p.blobs), p.source_digest)
                     for i, p in pulled),
        charts=tuple(charts), compose=compose, files=files,
        platforms=tuple(str(p) for p in spec.platforms), expires=_expires(spec.expires, created))
    manifest_bytes = manifest.to_bytes()
    signatures = envelope.sign(manifest_bytes, keys)
    small = {"oci-layout": OCI_LAYOUT, "index.json": index_bytes}

    def open_member(member: bundle_format.Member) -> BinaryIO:
        return BytesIO(small[member.path]) if member.path in small else store.open_blob(member.digest)

    reporter.step(f"writing {output} ({len(members)} members, {manifest.unpacked_size} bytes unpacked)")
    _write_file(output, lambda out, tick: bundle_format.write_bundle(
        out, manifest_bytes, signatures, members, open_member, level=options.level,
        threads=options.threads, progress=tick), manifest.unpacked_size, reporter)
    return manifest


def _index_bytes(manifests: list[Descriptor]) -> bytes:
    from signing import canonical
    return canonical.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [d.to_json() for d in manifests]})


def _write_file(output: Path, write, total: int, reporter: Reporter) -> None:  # type: ignore[no-untyped-def]
    """Write to a temporary name beside output, fsync, rename: never a half bundle under its name."""
    tmp = output.with_name(f".{output.name}.part")
    try:
        with tmp.open("wb") as out, reporter.bar(total, "writing") as tick:
            write(out, tick)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, output)
        fsync_dir(output.parent.resolve())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write {output}: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
