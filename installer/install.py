"""The install transaction, rollback, and the recovery that lets a re-run finish the job.

Invariant: with no journal, `current` names a complete release that was last seen healthy.
Every step is idempotent; the journal records the switch in progress so that after a
crash (even kill -9) the next command either completes it or undoes it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from bundler import __version__ as satchel_version
from bundler import targets as target_names
from bundler.errors import BundleError, EnvironmentProblem, SpecError
from bundler.format import BundleManifest, Member
from bundler.kit import runtime
from bundler.oci.layout import Layout, fsync_dir
from bundler.oci.model import Descriptor
from bundler.oci.registry import Endpoint, RegistryClient
from bundler.progress import QUIET, Reporter
from bundler.settings import Resolved, resolve
from bundler.verify import BundleInput, authorizer
from signing import trust
from signing.grammar import now_utc, parse_time, version_key
from signing.keys import VerifyKey, load_verify_key

from . import faults, releases, rollback_report, selfupdate, targets
from .config import SiteConfig
from .errors import DeployFailedRestored, DeployFailedUnrestored
from .push import RegistrySink, push_release
from .releases import ReleaseInfo
from .state import Root
from .targets import RenderRequest, for_release
from .targets.helm import HelmSettings
from .tools.registry import ManagedRegistry
from .truststore import TrustStore


def space_margin() -> int:
    """Free space kept beyond what a bundle needs (SATCHEL_SPACE_MARGIN bytes, default 64 MiB)."""
    return int(os.environ.get("SATCHEL_SPACE_MARGIN", 64 << 20))


@dataclass(frozen=True)
class InstallOptions:
    keys: Sequence[VerifyKey] = ()
    registry: str | None = None          # an existing registry host[:port]; else the managed one
    registry_insecure: bool = False
    registry_ca: str | None = None
    allow_downgrade: bool = False
    wait_timeout: int = 120
    keep: int = 3
    project: str | None = None
    lock_wait: float = 0
    now: datetime | None = None
    target: str | None = None            # compose | helm; default: the bundle's, else from its contents
    helm: HelmSettings = field(default_factory=HelmSettings)
    render_only: Path | None = None      # write the rendered release there and stop before the switch
    settings: dict[str, str] = field(default_factory=dict)   # per-install setting overrides (compose)
    sink: RegistrySink | None = None     # tests: an in-memory registry in place of any real one


@dataclass
class Outcome:
    action: str                          # installed | already-installed | rolled-back
    version: str
    previous: str | None = None
    pushed_blobs: int = 0
    removed: list[str] = field(default_factory=list)


class _AlreadyInstalled(Exception):
    """Control flow: the bundle is the deployed release; nothing past its manifest is read."""


class StagingSink:
    """Verified members land in staging/; blobs the store already has are only hashed."""

    def __init__(self, store: Layout, directory: Path) -> None:
        self.store, self.dir = store, directory
        self.staged: list[Member] = []
        self._fh: BinaryIO | None = None

    def begin(self, member: Member) -> BinaryIO | None:
        if member.path.startswith("blobs/") and (self.store.blobs / member.sha256).exists():
            return None
        self._fh = (self.dir / member.sha256).open("wb")
        return self._fh

    def commit(self, member: Member) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            if member.path.startswith("blobs/"):
                self.staged.append(member)

    def promote(self) -> None:
        """Move every verified blob into the store (same filesystem: rename)."""
        Layout.create(self.store.root)
        for member in self.staged:
            os.replace(self.dir / member.sha256, self.store.blobs / member.sha256)
        fsync_dir(self.store.blobs)


def trusted_keys(root: Root, given: Sequence[VerifyKey]) -> list[VerifyKey]:
    """--key, else the host's trust store, else (a fresh host) the vendor keys built into the kit."""
    keys = list(given) or TrustStore(root.trust).keys() or [load_verify_key(p) for p in runtime.trusted_key_files()]
    if not keys:
        raise SpecError("no trusted vendor key: pass --key VENDOR.pub or run satchel trust add VENDOR.pub")
    return keys


def last_install_time(root: Root) -> datetime | None:
    times = [e["time"] for e in root.history() if e.get("event") == "installed"]
    return parse_time(max(times)) if times else None


def apply_key_changes(root: Root, manifest: BundleManifest, reporter: Reporter) -> None:
    """Keys a verified bundle endorses become trusted; keys it revokes stop being trusted."""
    store = TrustStore(root.trust)
    for pem in manifest.trust_add:
        key = VerifyKey.from_pem(pem.encode())
        if key.keyid not in manifest.trust_revoke and store.add(key):
            root.record("trusted", keyid=key.keyid, version=manifest.version)
            reporter.step(f"now trusting key {key.keyid[:16]} (endorsed by the bundle)")
    for keyid in manifest.trust_revoke:
        if keyid not in store.revoked():
            store.revoke(keyid)
            root.record("revoked", keyid=keyid, version=manifest.version)
            reporter.step(f"key {keyid[:16]} revoked (by the bundle)")


def registry_client(root: Root, opts: InstallOptions) -> RegistrySink:
    if opts.sink:
        return opts.sink
    if opts.registry:
        return RegistryClient(Endpoint(opts.registry, insecure=opts.registry_insecure, ca_file=opts.registry_ca))
    return RegistryClient(Endpoint(ManagedRegistry(root.registry_dir).ensure_running()))


def _check_space(root: Root, manifest: BundleManifest) -> None:
    store = root.store
    needed = sum(m.size for m in manifest.members if not (store.blobs / m.sha256).exists())
    free = shutil.disk_usage(root.path).free
    margin = space_margin()
    if free < needed + margin:
        raise EnvironmentProblem(f"not enough free space in {root.path}: the bundle needs {needed >> 20} MiB "
                                 f"(+{margin >> 20} MiB margin), {free >> 20} MiB free")


def resolve_settings(root: Root, manifest: BundleManifest, opts: InstallOptions) -> Resolved:
    """Settings from all layers; any problem stops the install here, before any change."""
    site = SiteConfig(root)
    overrides = opts.settings if target_for(opts, manifest).takes_settings else {}  # else --set are target values
    return resolve(list(manifest.settings), site.site(), overrides, site.secrets())


def target_for(opts: InstallOptions, manifest: BundleManifest) -> targets.Target:
    return targets.get(target_names.choose(opts.target, manifest.target, bool(manifest.compose),
                                           bool(manifest.charts)))


def config_info(root: Root, release_id: str, manifest: BundleManifest, resolved: Resolved) -> dict[str, Any]:
    """release.json's view of the configuration: public values and layers, and where the env
    file (secrets included) lives — outside the release directory."""
    if not manifest.settings:
        return {}
    env = SiteConfig(root).env_file(release_id, resolved)
    return {"env_file": str(env), "config": {"values": resolved.public(list(manifest.settings)),
                                             "layers": resolved.layers}}


def _check_delta_base(root: Root, manifest: BundleManifest) -> None:
    """A delta bundle relies on blobs it does not carry: all must be in the store already."""
    store = root.store
    lacking = [d for d, size in manifest.external if not store.has(Descriptor("", d, size))]
    if lacking:
        base = ", ".join(f"{n} {v}" for n, v in manifest.delta_base) or "its base release"
        raise BundleError(f"this delta bundle relies on {len(lacking)} blob(s) this host does not have; "
                          f"install {base} first, or use the full bundle")


def _deploy(root: Root, version: str, previous: str | None, opts: InstallOptions, reporter: Reporter,
            event: str) -> None:
    """Switch `current` to version and apply it; on failure restore `previous` (exit 5/6)."""
    release = releases.load(root, version)
    faults.point("before-switch")
    root.switch(version)
    root.record("switch", version=version, previous=previous)
    faults.point("after-switch")
    reporter.step(f"starting {release.project} {version} (waiting up to {opts.wait_timeout}s for health)")
    ok, detail = for_release(release).apply(release, opts.wait_timeout)
    faults.point("after-apply")
    if ok:
        root.record(event, version=version, previous=previous)
        root.end()
        return
    root.record("failed", version=version, reason=detail)
    report = rollback_report.write(root, release, previous, detail)
    reporter.step(report.read_text().rstrip())
    root.record("report", version=version, path=str(report))
    if previous is None:
        for_release(release).stop(release)
        root.switch(None)
        root.end()
        raise DeployFailedRestored(f"{version} failed its health check ({detail}); there was no previous "
                                   "release, so it was stopped")
    old = releases.load(root, previous)
    root.switch(previous)
    restored, why = for_release(old).apply(old, opts.wait_timeout)
    root.end()
    if restored:
        root.record("rolled-back", version=previous, reason=f"{version} failed its health check")
        raise DeployFailedRestored(f"{version} failed its health check ({detail}); {previous} was restored")
    root.record("failed", version=previous, reason=why)
    raise DeployFailedUnrestored(f"{version} failed its health check ({detail}), and restoring {previous} "
                                 f"failed too ({why}); see satchel status")


def recover(root: Root, opts: InstallOptions, reporter: Reporter) -> dict[str, str] | None:
    """Finish or undo the operation a killed run left in the journal; returns it if it was
    finished (its switch had happened), None if there was nothing to finish."""
    releases.clean_leftovers(root)
    job = root.journal()
    if job is None:
        return None
    to, frm = job.get("to"), job.get("from")
    if root.current() == to and to is not None and releases.exists(root, to):
        reporter.step(f"finishing an interrupted {job.get('op')} of {to}")
        event = {"install": "installed", "config": "configured"}.get(str(job.get("op")), "rolled-back")
        _deploy(root, to, frm, opts, reporter, event)
        return job
    # The switch never happened: the old release is current and was never stopped.
    root.record("interrupted", op=job.get("op"), version=to)
    root.end()
    return None


def install(root: Root, bundle: Path, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    root.init()
    with root.lock(opts.lock_wait):
        recover(root, opts, reporter)
        keys = trusted_keys(root, opts.keys)
        store = TrustStore(root.trust)
        current = root.current()
        now = trust.effective_now(opts.now or now_utc(), last_install_time(root))
        verify_sig, _ = authorizer(keys, now, store.threshold(), sorted(store.revoked()))
        head: dict[str, bytes] = {}
        resolved: list[Resolved] = []

        def authorize(manifest_bytes: bytes, signatures: bytes) -> BundleManifest:
            manifest = verify_sig(manifest_bytes, signatures)
            if version_key(manifest.min_installer) > version_key(satchel_version):
                raise BundleError(f"the bundle needs Satchel {manifest.min_installer} or newer "
                                  f"(this is {satchel_version})")
            if current == manifest.version and releases.exists(root, current) and hashlib.sha256(
                    manifest_bytes).digest() == hashlib.sha256(
                    (root.releases / current / "manifest.json").read_bytes()).digest():
                raise _AlreadyInstalled(manifest.version)
            trust.check_version(manifest.version, current, opts.allow_downgrade)
            selfupdate.check(manifest, opts.allow_downgrade)
            resolved.append(resolve_settings(root, manifest, opts))
            _check_delta_base(root, manifest)
            _check_space(root, manifest)
            if opts.registry is None and opts.sink is None:
                ManagedRegistry(root.registry_dir).check_port()
            head.update(manifest=manifest_bytes, signatures=signatures)
            return manifest

        staging = Path(tempfile.mkdtemp(dir=root.staging, prefix="bundle-"))
        sink = StagingSink(root.store, staging)
        try:
            with BundleInput(bundle, keys) as source, reporter.bar(source.size, "verifying") as tick:
                manifest = source.read(authorize, sink, progress=tick)
            faults.point("after-verify")
            sink.promote()
            apply_key_changes(root, manifest, reporter)
        except _AlreadyInstalled as done:
            selfupdate.apply(root, releases.load(root, str(done)).manifest(), reporter)  # finishes a killed run's
            return Outcome("already-installed", str(done), releases.previous_version(root))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        faults.point("after-promote")

        version = manifest.version
        project = opts.project or (releases.load(root, current).project if current else manifest.name)
        root.begin(op="install", to=version, **{"from": current})
        client = registry_client(root, opts)
        reporter.step(f"pushing images to {client.endpoint.host}")
        pushed = push_release(root.store, client, manifest)
        faults.point("after-push")
        tmp = releases.staging_dir(root, version)
        target = target_for(opts, manifest)
        rendered = target.render(RenderRequest(manifest, root.store, client.endpoint.host, opts.registry_insecure,
                                               tmp, opts.helm))
        info = ReleaseInfo(name=manifest.name, version=version, project=project, registry=client.endpoint.host,
                           target=target.name, **rendered, **config_info(root, version, manifest, resolved[0]))
        releases.write_metadata(tmp, head["manifest"], head["signatures"], info)
        if opts.render_only is not None:
            shutil.copytree(tmp, opts.render_only, dirs_exist_ok=True)
            shutil.rmtree(tmp)
            root.end()
            return Outcome("rendered", version, current, pushed)
        faults.point("before-commit")
        releases.commit(root, tmp, version)
        _deploy(root, version, current, opts, reporter, "installed")
        selfupdate.apply(root, manifest, reporter)
        removed = releases.retain(root, opts.keep)
        return Outcome("installed", version, current, pushed, removed)


def rollback(root: Root, to: str | None, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    root.init()
    with root.lock(opts.lock_wait):
        finished = recover(root, opts, reporter)
        if finished and finished.get("op") == "rollback" and to in (None, finished["to"]):
            return Outcome("rolled-back", finished["to"], finished.get("from"))
        current = root.current()
        target_version = to or releases.previous_version(root)
        if target_version is None:
            raise SpecError("there is no earlier release on this host to roll back to")
        if not releases.exists(root, target_version):
            have = ", ".join(releases.installed_versions(root)) or "none"
            raise SpecError(f"release {target_version} is not kept on this host (kept: {have})")
        release = releases.load(root, target_version)
        if opts.registry is None:
            # The managed registry may have been restarted or emptied: push again (skips present blobs).
            push_release(root.store, registry_client(root, opts), release.manifest())
        if target_version == current:
            # Re-apply the current release: brings back containers removed or stopped by hand.
            reporter.step(f"re-applying {current}")
            ok, detail = for_release(release).apply(release, opts.wait_timeout)
            root.record("reapplied" if ok else "failed", version=current, **({} if ok else {"reason": detail}))
            if not ok:
                raise DeployFailedUnrestored(f"{current} did not come up healthy ({detail}); see satchel status")
            return Outcome("reapplied", current, current)
        root.begin(op="rollback", to=target_version, **{"from": current})
        _deploy(root, target_version, current, opts, reporter, "rolled-back")
        if current:
            selfupdate.restore(root, current, reporter)
        return Outcome("rolled-back", target_version, current)



def apply_config(root: Root, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    """A configuration change is a release: the current bundle, the new values, switched and
    health-checked like any install, and rolled back (old values included) if it fails."""
    root.init()
    with root.lock(opts.lock_wait):
        recover(root, opts, reporter)
        current = root.current()
        if current is None:
            raise SpecError("no release is installed; install a bundle first")
        release = releases.load(root, current)
        target = for_release(release)
        if not target.takes_settings:
            raise SpecError(f"config apply is for targets that take site settings; {target.name} takes "
                            "--values/--set at install")
        manifest = release.manifest()
        resolved = resolve_settings(root, manifest, opts)
        base = manifest.version
        taken = [int(v.rsplit(".", 1)[1]) for v in (p.name for p in root.releases.glob(f"{base}+config.*"))
                 if v.rsplit(".", 1)[1].isdigit()]
        new_id = f"{base}+config.{max(taken, default=0) + 1}"
        tmp = releases.staging_dir(root, new_id)
        rendered = target.render(RenderRequest(manifest, root.store, release.info.registry, False, tmp))
        info = replace(release.info, **rendered, **config_info(root, new_id, manifest, resolved))
        releases.write_metadata(tmp, (release.path / "manifest.json").read_bytes(),
                                (release.path / "signatures.json").read_bytes(), info)
        releases.commit(root, tmp, new_id)
        root.begin(op="config", to=new_id, **{"from": current})
        _deploy(root, new_id, current, opts, reporter, "configured")
        return Outcome("configured", new_id, current)
