"""Taking a bundle in: every check that must pass before anything changes (signature, then
from the manifest alone: installer version, already installed, downgrade, settings, delta
base, free space, the registry port), then the streamed verification into staging, and the
promotion of verified blobs into the store."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import yaml

from bundler import __version__ as satchel_version
from bundler.compose_vars import merged_services
from bundler.errors import BundleError, EnvironmentProblem, SpecError
from bundler.format import MANIFEST
from bundler.kit import runtime
from bundler.manifest import BundleManifest, Member
from bundler.oci.digest import Writable
from bundler.oci.layout import Layout, fsync_dir
from bundler.oci.model import Descriptor
from bundler.progress import Reporter
from bundler.settings import Resolved
from bundler.verify import BundleInput, authorizer
from signing import trust
from signing.errors import ExpiredError
from signing.grammar import format_time, now_utc, parse_time, version_key
from signing.keys import VerifyKey, load_verify_key

from . import faults, keychanges, preflight, releases, selfupdate, snapshots, targets
from .config import resolve_settings
from .options import InstallOptions, space_margin
from .state import App, Host
from .targets.compose import MAX_COMPOSE_BYTES
from .truststore import TrustStore


class AlreadyInstalled(Exception):
    """Control flow: the bundle is the deployed release; nothing past its manifest is read."""

    def __init__(self, app: App, release_id: str) -> None:
        super().__init__(release_id)
        self.app, self.release_id = app, release_id


@dataclass(frozen=True)
class Intake:
    app: App                             # the bundle's name selects its application
    current: str | None                  # that application's current release
    manifest: BundleManifest
    manifest_bytes: bytes
    signatures: bytes
    resolved: Resolved                   # the settings, from every layer


class StagingSink:
    """Verified members land in staging/; blobs the store already has are only hashed. A
    repair takes `only` the blobs it names, whether the store has a copy or not. Members
    commit on the reader's hashing lanes, in any order; each file is fsynced by a thread of
    its own, so a lane goes on hashing while the disk catches up, and promote() waits for all."""

    def __init__(self, store: Layout, directory: Path, only: AbstractSet[str] | None = None) -> None:
        self.store, self.dir, self.only = store, directory, only
        self.staged: list[Member] = []
        self._flusher = ThreadPoolExecutor(1, thread_name_prefix="satchel-fsync")
        self._flushing: list[Future[None]] = []

    def begin(self, member: Member) -> BinaryIO | None:
        is_blob = member.path.startswith("blobs/")
        if self.only is not None and not (is_blob and member.sha256 in self.only):
            return None
        if self.only is None and is_blob and (self.store.blobs / member.sha256).exists():
            return None
        return (self.dir / member.sha256).open("wb")

    def commit(self, member: Member, written: Writable) -> None:
        fh = cast(BinaryIO, written)
        fh.flush()
        self._flushing.append(self._flusher.submit(self._sync, member, fh))

    def _sync(self, member: Member, fh: BinaryIO) -> None:
        with fh:
            os.fsync(fh.fileno())
        if member.path.startswith("blobs/"):
            self.staged.append(member)

    def promote(self) -> None:
        """Move every verified blob into the store (same filesystem: rename), once on disk."""
        with self._flusher:
            for done in self._flushing:
                done.result()
        Layout.create(self.store.root)
        for member in self.staged:
            os.replace(self.dir / member.sha256, self.store.blobs / member.sha256)
        fsync_dir(self.store.blobs)


def trusted_keys(host: Host, given: Sequence[VerifyKey]) -> list[VerifyKey]:
    """--key, else the host's trust store, else (a fresh host) the vendor keys built into the kit."""
    keys = list(given) or TrustStore(host.trust).keys() or [load_verify_key(p) for p in runtime.trusted_key_files()]
    if not keys:
        raise SpecError("no trusted vendor key: pass --key VENDOR.pub or run satchel trust add VENDOR.pub")
    return keys


def clock_floor(host: Host) -> datetime | None:
    """The latest install of any application: expiry is never judged earlier. Kept in the
    trust store (satchel trust reset-clock sets it back); hosts from before that file read
    it from their histories."""
    floor = TrustStore(host.trust).clock_floor()
    if floor is not None:
        return floor
    times = [e["time"] for app in host.apps() for e in app.history() if e.get("event") == "installed"]
    return parse_time(max(times)) if times else None


def expired_at(host: Host, manifest: BundleManifest, clock: datetime) -> str | None:
    """When a kept release's bundle expired, if it has (judged like an install)."""
    expires = parse_time(manifest.expires) if manifest.expires else None
    return manifest.expires if expires and trust.effective_now(clock, clock_floor(host)) >= expires else None


def note_install_time(host: Host, clock: datetime) -> None:
    """After a successful install: the floor moves up to this install's time."""
    floor = clock_floor(host)
    TrustStore(host.trust).raise_clock_floor(max(clock, floor) if floor else clock)


def check_space(host: Host, manifest: BundleManifest) -> None:
    store = host.store
    needed = sum(m.size for m in manifest.members if not (store.blobs / m.sha256).exists())
    free = shutil.disk_usage(host.path).free
    margin = space_margin()
    if free < needed + margin:
        raise EnvironmentProblem(f"not enough free space in {host.path}: the bundle needs {needed >> 20} MiB "
                                 f"(+{margin >> 20} MiB margin), {free >> 20} MiB free")


def check_delta_base(host: Host, manifest: BundleManifest) -> None:
    """A delta bundle relies on blobs it does not carry: all must be in the store already."""
    store = host.store
    lacking = [d for d, size in manifest.external if not store.has(Descriptor("", d, size))]
    if lacking:
        base = ", ".join(f"{n} {v}" for n, v in manifest.delta_base) or "its base release"
        raise BundleError(f"this delta bundle relies on {len(lacking)} blob(s) this host does not have; "
                          f"install {base} first, or use the full bundle")


def project_for(app: App, opts: InstallOptions, current: str | None, manifest: BundleManifest) -> str:
    """The project a release runs under: --project, else the current release's, else the bundle's name."""
    return opts.project or (releases.load(app, current).project if current else manifest.name)


def check_project_free(app: App, project: str) -> None:
    """Another application on this host must not run under the same project name."""
    for other in app.host.apps():
        current = other.current()
        if other.name != app.name and current and releases.load(other, current).project == project:
            raise EnvironmentProblem(f"Compose project {project!r} belongs to application {other.name} on this "
                                     "host; install under another name with --project NAME")


def compare_builds(app: App, manifest: BundleManifest, manifest_bytes: bytes, current: str | None,
                   replace_build: bool) -> None:
    """The current release from the same bytes: AlreadyInstalled. The same version from other
    bytes is another build: refused unless asked for, or an older build of a version could
    be replayed over a newer one."""
    digest = hashlib.sha256(manifest_bytes).digest()

    def same_bytes(release_id: str) -> bool:
        return hashlib.sha256((app.releases / release_id / MANIFEST).read_bytes()).digest() == digest

    if current and releases.version_of(app, current) == manifest.version and same_bytes(current):
        raise AlreadyInstalled(app, current)
    others = sorted(p.name for p in app.releases.glob("[!.]*")
                    if releases.version_of(app, p.name) == manifest.version and not same_bytes(p.name))
    if others and not replace_build:
        raise BundleError(f"{app.name} {manifest.version} is already on this host from another build (release "
                          f"{', '.join(others)}); a new build needs a new version, or pass --replace-build to "
                          "install this one anyway")


def signature_check(host: Host, keys: list[VerifyKey], clock: datetime) -> Callable[[bytes, bytes], BundleManifest]:
    """The manifest's signature judged with this host's trust store: threshold, revocations,
    and expiry never earlier than the latest install."""
    store = TrustStore(host.trust)
    verify_sig, _ = authorizer(keys, trust.effective_now(clock, clock_floor(host)), store.threshold(),
                               sorted(store.revoked()))
    return verify_sig


def compose_services(manifest: BundleManifest, blob: Callable[[str], bytes]) -> dict[str, Any]:
    """The services of the bundle's compose files (verified members; `blob(hex)` reads one), merged."""
    for entry in manifest.compose:
        if entry.size > MAX_COMPOSE_BYTES:
            raise BundleError(f"compose file {entry.path} is larger than {MAX_COMPOSE_BYTES >> 20} MiB")
    return merged_services(yaml.safe_load(blob(entry.digest.split(":", 1)[1])) for entry in manifest.compose)


def _preflight_context(host: Host, app: App, manifest: BundleManifest, services: dict[str, Any],
                       current: str | None, opts: InstallOptions) -> preflight.Context:
    return preflight.Context(host, app, manifest, services, project_for(app, opts, current, manifest),
                             opts.registry is None and opts.sink is None)


def take_in(host: Host, bundle: Path, opts: InstallOptions, reporter: Reporter) -> Intake:
    """Verify `bundle` into the store; AlreadyInstalled if it is its application's current release."""
    keys = trusted_keys(host, opts.keys)
    clock, floor = opts.now or now_utc(), clock_floor(host)
    verify_sig = signature_check(host, keys, clock)
    checked: list[Intake] = []

    def authorize(manifest_bytes: bytes, signatures: bytes) -> BundleManifest:
        manifest = verify_sig(manifest_bytes, signatures)
        app = host.app(manifest.name)
        current = app.current()
        current_version = releases.version_of(app, current) if current else None
        if current and current_version is None:
            reporter.warn(f"the current release {current} of {app.name} is missing or damaged; "
                          "installing as if nothing were installed")
            current = None
        if version_key(manifest.min_installer) > version_key(satchel_version):
            raise BundleError(f"the bundle needs Satchel {manifest.min_installer} or newer "
                              f"(this is {satchel_version})")
        compare_builds(app, manifest, manifest_bytes, current, opts.replace_build)
        trust.check_version(manifest.version, current_version, opts.allow_downgrade)
        selfupdate.check(manifest, opts.allow_downgrade)
        resolved = resolve_settings(app, manifest, opts.settings, opts.target)
        if opts.render_only is None:
            project = project_for(app, opts, current, manifest)
            check_project_free(app, project)
            targets.choose(opts.target, manifest).check(project, app.owned_dirs())
        check_delta_base(host, manifest)
        if current and opts.render_only is None:
            running = releases.load(app, current)
            snapshots.check_room(app, running, snapshots.declared(manifest, running.manifest()))
        check_space(host, manifest)
        if opts.render_only is None:
            preflight.enforce(preflight.run(_preflight_context(host, app, manifest, {}, current, opts), "manifest"),
                              reporter)
        checked.append(Intake(app, current, manifest, manifest_bytes, signatures, resolved))
        return manifest

    staging = Path(tempfile.mkdtemp(dir=host.staging, prefix="bundle-"))
    sink = StagingSink(host.store, staging)
    try:
        with BundleInput(bundle, keys) as source, reporter.bar(source.size, "verifying") as tick:
            source.read(authorize, sink, progress=tick)
    except ExpiredError as exc:
        if floor is None or floor <= clock:
            raise
        raise ExpiredError(f"{exc}, judged at {format_time(floor)}, this host's latest install, which is later "
                           f"than its clock ({format_time(clock)}); if the clock was wrong then, "
                           "`satchel trust reset-clock --yes` sets that install time aside") from None
    else:
        if opts.render_only is None:
            done = checked[0]
            services = compose_services(done.manifest, lambda hex_: (
                staging / hex_ if (staging / hex_).exists() else host.store.blobs / hex_).read_bytes())
            preflight.enforce(preflight.run(_preflight_context(host, done.app, done.manifest, services, done.current,
                                                               opts), "content"), reporter)
        faults.point("after-verify")
        sink.promote()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if opts.render_only is None:
        done = checked[0]
        keychanges.apply(host, done.manifest, done.manifest_bytes, done.signatures, reporter)
    return checked[0]
