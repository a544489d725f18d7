"""satchel build: spec -> pulled images, charts and files in a local cache -> signed bundle."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from signing import canonical, envelope
from signing.errors import KeyFileError
from signing.grammar import format_time, parse_duration, parse_time
from signing.keys import SigningKey, load_verify_key

from . import __version__ as satchel_version
from . import format as bundle_format
from . import manifest as bundle_manifest
from . import sbom
from .charts import pack_chart
from .delta import DeltaBase
from .discover import chart_images, compose_images, compose_names, compose_services
from .errors import BundleError, EnvironmentProblem, NotFoundError, SpecError
from .grants import grants_of
from .kit import kitfile
from .lifecycle import check_names
from .oci.layout import OCI_LAYOUT, REF_ANNOTATION, Layout, fsync_dir
from .oci.model import OCI_INDEX, Descriptor, Platform
from .oci.refs import Reference, is_loopback
from .oci.registry import Endpoint, RegistryClient
from .progress import QUIET, Reporter
from .pull import Pulled, pull
from .sbom import Sbom
from .sources.archive import ArchiveSource
from .sources.base import ImageSource
from .sources.directory import DirectorySource
from .sources.docker import DockerSource
from .sources.layout import LayoutSource
from .sources.registry import RegistrySource
from .spec import ImageSpec, Spec
from .switching import routed_ports

EPOCH = "1970-01-01T00:00:00Z"
COSIGN_SUFFIXES = (".sig", ".att")


@dataclass(frozen=True)
class BuildOptions:
    cache: Path
    level: int = 3
    threads: int = os.cpu_count() or 1
    concurrency: int = 4
    sbom: bool = True                  # a CycloneDX SBOM of every image (Syft), pinned by the manifest


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "satchel"


def _created(now: datetime | None) -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        if not epoch.isdigit():
            raise SpecError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds")
        return format_time(datetime.fromtimestamp(int(epoch), UTC))
    return format_time(now or datetime.now(UTC))


def _expires(value: str | None, created: str) -> str | None:
    if value is None:
        return None
    duration = parse_duration(value)
    if duration is not None:
        return format_time(parse_time(created) + duration)
    try:
        return format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
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


def _refs(texts: list[str], origin: str) -> list[tuple[str, Reference]]:
    try:
        return [(t, Reference.parse(t)) for t in texts]
    except SpecError as exc:
        raise SpecError(f"{origin}: {exc}") from None


def image_list(spec: Spec, chart_refs: dict[str, list[tuple[str, Reference]]]) -> list[ImageSpec]:
    """Spec images, plus every image a compose file or chart names (pulled from its registry)."""
    images = {str(i.ref): i for i in spec.images}
    discovered = [r for p in spec.compose for r in _refs(compose_images(spec.base / p), f"compose file {p}")]
    discovered += [r for refs in chart_refs.values() for r in refs]
    for text, ref in discovered:
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
    mtime = _layer_mtime(created)
    return DirectorySource(image.path, platform, image.options, workdir, mtime,
                           created if mtime else EPOCH)


def _layer_mtime(created: str) -> int:
    """Files packed here get SOURCE_DATE_EPOCH as mtime, else 0: never the build time."""
    return int(parse_time(created).timestamp()) if "SOURCE_DATE_EPOCH" in os.environ else 0


def _file(spec: Spec, store: Layout, rel: str, what: str) -> bundle_manifest.File:
    try:
        with (spec.base / rel).open("rb") as fh:
            desc = store.ingest(fh)
    except FileNotFoundError:
        raise SpecError(f"{what} {rel} does not exist (paths are relative to the spec)") from None
    except IsADirectoryError:
        raise SpecError(f"{what} {rel} is a directory; list files") from None
    return bundle_manifest.File(rel, desc.digest, desc.size)


def _installer(spec: Spec, store: Layout) -> bundle_manifest.Installer:
    """The kit file named by `installer:`; its version and platform from its own trailer."""
    assert spec.installer is not None
    try:
        meta = kitfile.read_meta(spec.base / spec.installer)
    except BundleError as exc:
        raise SpecError(f"installer: {exc}") from None
    kit = _file(spec, store, spec.installer, "installer kit")
    return bundle_manifest.Installer(kit.path, kit.digest, kit.size, str(meta["version"]), str(meta["platform"]))


def _pull_all(spec: Spec, images: list[ImageSpec], store: Layout, options: BuildOptions, created: str,
              reporter: Reporter) -> list[tuple[ImageSpec, Pulled]]:
    """Every image from its source into the build cache, filtered to the wanted platforms."""
    clients = _Clients(spec)
    pulled = []
    for image in images:
        reporter.step(f"pulling {image.ref} from {image.source}")
        source = open_source(image, clients, options.cache / "tmp", created)
        try:
            concurrency = options.concurrency if image.source == "registry" else 1
            pulled.append((image, pull(source, store, image.platforms or spec.platforms,
                                       concurrency=concurrency, bar=reporter.bar)))
        finally:
            source.close()
        if image.options.get("signatures"):
            pulled += _cosign_companions(image, pulled[-1][1], clients, store, reporter)
    return pulled


def _cosign_companions(image: ImageSpec, pulled: Pulled, clients: _Clients, store: Layout,
                       reporter: Reporter) -> list[tuple[ImageSpec, Pulled]]:
    """The image's cosign signature and attestation, by cosign's convention the tags
    sha256-HEX.sig and sha256-HEX.att of its repository: bundled as images of their own, so the
    install pushes them beside it and `cosign verify` finds them in the local registry."""
    if pulled.source_digest:
        reporter.warn(f"{image.ref}: its signatures are for the whole index, and the bundle keeps only some "
                      "platforms of it: they are left out")
        return []
    client, out = clients.get(image.ref.registry), []
    for suffix in COSIGN_SUFFIXES:
        tag = pulled.root.digest.replace(":", "-") + suffix
        try:
            client.get_manifest(image.ref.repository, tag)
        except NotFoundError:
            continue
        ref = Reference(image.ref.registry, image.ref.repository, tag)
        reporter.step(f"pulling {ref} (cosign {suffix.lstrip('.')})")
        source = RegistrySource(client, ref)
        try:
            out.append((ImageSpec(ref, str(ref)), pull(source, store, (), concurrency=1, bar=reporter.bar)))
        finally:
            source.close()
    return out


def build(spec: Spec, output: Path, keys: Sequence[SigningKey], options: BuildOptions,
          reporter: Reporter = QUIET, now: datetime | None = None,
          base: DeltaBase | None = None) -> bundle_manifest.BundleManifest:
    """With `base`, blobs the customer already holds are left out (a delta bundle); the
    manifest still pins them by digest and size, and names the base releases."""
    if not keys:
        raise SpecError("a bundle needs at least one signing key (--key NAME.key)")
    if not (spec.images or spec.charts or spec.compose or spec.files or spec.installer):
        reporter.warn(f"{spec.name} {spec.version} names no image, chart, compose file or file: "
                      "the bundle will carry nothing to install")
    if spec.lifecycle:
        names = [compose_names(spec.base / p) for p in spec.compose]
        check_names(spec.lifecycle, set().union(*(s for s, _ in names)), set().union(*(v for _, v in names)))
    if spec.switch and spec.switch.blue_green:
        routed_ports(spec.switch, compose_services(spec.base / p for p in spec.compose))
    created = _created(now)
    store = Layout.create(options.cache / "oci", durable=False)
    chart_refs = {rel: _refs(chart_images(spec.base / rel), f"chart {rel}") for rel in spec.charts}
    pulled = _pull_all(spec, image_list(spec, chart_refs), store, options, created, reporter)
    roots = [(p.root, str(i.ref)) for i, p in pulled]
    blobs = {b.digest: b.size for _, p in pulled for b in p.blobs}
    sboms = _sboms(pulled, store, created, reporter) if options.sbom else ()
    blobs.update({s.digest: s.size for s in sboms})
    charts = []
    for rel in spec.charts:
        packed = pack_chart(spec.base / rel, store, _layer_mtime(created))
        roots.append((packed.manifest, f"charts/{packed.name}:{packed.version}"))
        blobs.update({b.digest: b.size for b in packed.blobs})
        refs = tuple(sorted({str(ref) for _, ref in chart_refs[rel]}))
        charts.append(bundle_manifest.Chart(packed.name, packed.version, packed.manifest.digest, rel, refs))
    compose = tuple(_file(spec, store, rel, "compose file") for rel in spec.compose)
    files = tuple(_file(spec, store, rel, "file") for rel in spec.files)
    installer = _installer(spec, store) if spec.installer else None
    blobs.update({f.digest: f.size for f in (*compose, *files)})
    if installer:
        blobs[installer.digest] = installer.size
    index_bytes = _index_bytes(roots)
    external = sorted((d, s) for d, s in blobs.items() if base and base.blobs.get(d) == s)
    members = [bundle_manifest.Member.for_bytes("oci-layout", OCI_LAYOUT),
               bundle_manifest.Member.for_bytes("index.json", index_bytes)]
    members += [bundle_manifest.Member.for_blob(d, s) for d, s in sorted(blobs.items()) if (d, s) not in external]
    same_app = [r for r in base.releases if r[0] == spec.name] if base else []
    manifest = bundle_manifest.BundleManifest(
        name=spec.name, version=spec.version, created=created, min_installer=satchel_version,
        members=tuple(members), description=spec.description,
        images=tuple(bundle_manifest.Image(str(i.ref), p.root.digest, p.root.media_type,
                                         sum(b.size for b in p.blobs), p.platforms,
                                         tuple(b.digest for b in p.blobs), p.source_digest)
                     for i, p in pulled),
        charts=tuple(charts), compose=compose, files=files,
        platforms=tuple(str(p) for p in spec.platforms), expires=_expires(spec.expires, created),
        secrets=spec.secrets, external=tuple(external), target=spec.target,
        trust_add=tuple(_endorsed(spec, p) for p in spec.trust_add), trust_revoke=spec.trust_revoke,
        settings=spec.settings, installer=installer, lifecycle=spec.lifecycle, switch=spec.switch,
        requirements=spec.requirements,
        grants=grants_of(compose_services(spec.base / p for p in spec.compose)), sboms=sboms,
        delta_base=tuple(same_app or base.releases) if base and external else ())
    manifest_bytes = manifest.to_bytes()
    signatures = envelope.sign(manifest_bytes, keys)
    small = {"oci-layout": OCI_LAYOUT, "index.json": index_bytes}

    def open_member(member: bundle_manifest.Member) -> BinaryIO:
        return BytesIO(small[member.path]) if member.path in small else store.open_blob(member.digest)

    reporter.step(f"writing {output} ({len(members)} members, {manifest.unpacked_size} bytes unpacked)")
    _write_file(output, lambda out, tick: bundle_format.write_bundle(
        out, manifest_bytes, signatures, members, open_member, level=options.level,
        threads=options.threads, progress=tick), manifest.unpacked_size, reporter)
    return manifest


def _sboms(pulled: list[tuple[ImageSpec, Pulled]], store: Layout, created: str,
           reporter: Reporter) -> tuple[Sbom, ...]:
    """One SBOM per image and platform, stored as a blob."""
    out = []
    for image, p in pulled:
        if (image.ref.tag or "").endswith(COSIGN_SUFFIXES):
            continue                   # a signature or an attestation, not software
        reporter.step(f"SBOM of {image.ref}")
        for platform, data in sbom.generate(store, str(image.ref), p.root, p.platforms, created):
            desc = store.put_bytes(sbom.MEDIA_TYPE, data)
            out.append(Sbom(str(image.ref), platform, desc.digest, desc.size))
    return tuple(out)


def _endorsed(spec: Spec, rel: str) -> str:
    """A public key the bundle endorses, as normalised PEM text."""
    try:
        return load_verify_key(spec.base / rel).pem().decode()
    except KeyFileError as exc:
        raise SpecError(f"keys.add: {exc}") from None


def _index_bytes(roots: list[tuple[Descriptor, str]]) -> bytes:
    """index.json of the bundle's OCI layout: every image and chart, named by its reference."""
    entries = [Descriptor(d.media_type, d.digest, d.size, annotations={REF_ANNOTATION: name})
               for d, name in sorted(roots, key=lambda r: r[1])]
    return canonical.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": [d.to_json() for d in entries]})


def _write_file(output: Path, write: Callable[[BinaryIO, Callable[[int], None]], None], total: int,
                reporter: Reporter) -> None:
    """Write to a temporary name beside output, fsync, rename: never a half bundle under its name."""
    tmp = output.with_name(f".{output.name}.part")
    try:
        with tmp.open("wb") as out:
            with reporter.bar(total, "writing") as tick:
                write(out, tick)
            reporter.step(f"syncing {output.name} to disk")
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
