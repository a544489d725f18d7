"""The install transaction: the story of one install, and of one rollback. Each step is
idempotent; the journal (switch.py) lets a re-run finish what a crash interrupted.

    lock the host -> finish or undo killed runs -> take the bundle in (verify, stage, promote;
    its name selects the application: intake.py) -> push its images -> render the release
    -> commit it -> switch and apply (switch.py) -> replace the kit if the bundle carries one
    -> retention, then garbage collection across every application (gc.py)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bundler.errors import SpecError
from bundler.oci.registry import Endpoint, RegistryClient
from bundler.progress import QUIET, Reporter
from signing.grammar import now_utc

from . import faults, gc, releases, selfupdate, snapshots, storecheck, targets
from .config import config_info
from .errors import DeployFailedUnrestored
from .intake import AlreadyInstalled, expired_at, note_install_time, project_for, take_in, trusted_keys
from .options import InstallOptions, Outcome
from .push import RegistrySink, push_release
from .releases import ReleaseInfo
from .state import App, Host
from .switch import deploy, recover, recover_host, start
from .targets import RenderRequest, for_release
from .tools.registry import ManagedRegistry
from .tools.registry_storage import RegistryStorage


def registry_client(host: Host, opts: InstallOptions) -> RegistrySink:
    """Where the images go: an external --registry over its API; the managed registry's own
    storage, as hard links to the content store (installer/tools/registry_storage.py)."""
    if opts.sink:
        return opts.sink
    if opts.registry:
        return RegistryClient(Endpoint(opts.registry, insecure=opts.registry_insecure, ca_file=opts.registry_ca))
    registry = ManagedRegistry(host.registry_dir)
    registry.ensure_running()
    return RegistryStorage(registry, host.store)


def install(host: Host, bundle: Path, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    host.init()
    with host.lock(opts.lock_wait):
        recover_host(host, opts, reporter)
        try:
            intake = take_in(host, bundle, opts, reporter)
        except AlreadyInstalled as done:
            manifest = releases.load(done.app, done.release_id).manifest()
            repaired = storecheck.heal(host, manifest, bundle, trusted_keys(host, opts.keys), reporter)
            selfupdate.apply(done.app, manifest, reporter)   # the kit swap of a killed run may still be to do
            return Outcome("already-installed", done.release_id, releases.previous_version(done.app),
                           app=done.app.name, repaired=repaired)
        faults.point("after-promote")

        app, current, manifest = intake.app, intake.current, intake.manifest
        release_id = releases.new_id(app, manifest.version, "install")
        project = project_for(app, opts, current, manifest)
        app.begin(op="install", to=release_id, **{"from": current})
        client = registry_client(host, opts)
        reporter.step(f"pushing images to {client.endpoint.host}")
        pushed = push_release(host.store, client, manifest, reporter=reporter)
        faults.point("after-push")

        tmp = releases.staging_dir(app, release_id)
        target = targets.choose(opts.target, manifest)
        rendered = target.render(RenderRequest(manifest, host.store, client.endpoint.host, opts.registry_insecure,
                                               tmp, opts.helm, project))
        info = ReleaseInfo(name=manifest.name, version=manifest.version, project=project,
                           registry=client.endpoint.host, target=target.name, **rendered,
                           **config_info(app, release_id, manifest, intake.resolved))
        releases.write_metadata(tmp, intake.manifest_bytes, intake.signatures, info)
        if opts.render_only is not None:
            shutil.copytree(tmp, opts.render_only, dirs_exist_ok=True)
            shutil.rmtree(tmp)
            app.end()
            return Outcome("rendered", release_id, current, pushed, app=app.name)
        faults.point("before-commit")
        releases.commit(app, tmp, release_id)

        deploy(app, release_id, current, opts, reporter, "installed")
        note_install_time(host, opts.now or now_utc())
        selfupdate.apply(app, manifest, reporter)
        removed = releases.retain(app, opts.keep)
        snapshots.retain(app, set(releases.installed_versions(app)))
        gc.collect(host, reporter)
        return Outcome("installed", release_id, current, pushed, removed, app=app.name)


def rollback(app: App, to: str | None, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    app.host.init()
    with app.host.lock(opts.lock_wait):
        finished = recover(app, opts, reporter)
        if finished and finished.get("op") == "rollback" and to in (None, finished["to"]):
            return Outcome("rolled-back", finished["to"], finished.get("from"), app=app.name)
        current = app.current()
        target_version = _rollback_target(app, to)
        release = releases.load(app, target_version)
        for_release(release).check(release.project, app.owned_dirs())
        expired = expired_at(app.host, release.manifest(), opts.now or now_utc())
        if expired:
            # Allowed: it ran here before, and rollback is how a site gets out of a bad upgrade.
            reporter.warn(f"the bundle of {target_version} expired at {expired}; rolling back to it anyway")
            app.record("expired-rollback", version=target_version, expired=expired)
        if opts.registry is None:
            # The managed registry may have been restarted or emptied: push again (skips present blobs).
            push_release(app.host.store, registry_client(app.host, opts), release.manifest(), at_rest=True)
        if target_version == current and opts.with_data:
            raise SpecError(f"{current} is the current release: --with-data goes with a switch; "
                            "satchel snapshots restore ID puts data back under it")
        if target_version == current:
            # Re-apply the current release: brings back containers removed or stopped by hand.
            ok, detail = start(release, opts, reporter, f"re-applying {current}")
            app.record("reapplied" if ok else "failed", version=current, **({} if ok else {"reason": detail}))
            if not ok:
                raise DeployFailedUnrestored(f"{current} did not come up healthy ({detail}); see satchel status")
            return Outcome("reapplied", current, current, app=app.name)
        data = _data_of(app, target_version, opts.with_data, reporter)
        app.begin(op="rollback", to=target_version, **{"from": current}, **({"data": data.id} if data else {}))
        deploy(app, target_version, current, opts, reporter, "rolled-back", data=data)
        if current:
            selfupdate.restore(app, current, reporter)
        return Outcome("rolled-back", target_version, current, app=app.name)


def restore_data(app: App, snap_id: str, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    """Put a snapshot's data back under the current release: a switch from the current release
    to itself with the data restored, so the data it replaces is snapshotted first (and comes
    back if the release does not get healthy on the restored data)."""
    app.host.init()
    with app.host.lock(opts.lock_wait):
        recover(app, opts, reporter)
        current = app.current()
        if current is None:
            raise SpecError(f"{app.name} has no current release to restore data under")
        snap = snapshots.load(app, snap_id)
        release = releases.load(app, current)
        for_release(release).check(release.project, app.owned_dirs())
        app.begin(op="data", to=current, data=snap.id, **{"from": current})
        deploy(app, current, current, opts, reporter, "data-restored", data=snap)
        return Outcome("data-restored", current, current, app=app.name)


def _data_of(app: App, version: str, with_data: bool, reporter: Reporter) -> snapshots.Snapshot | None:
    """The snapshot of the target release's data, when asked for (it must exist); else a word
    that the data stays as it is."""
    snap = snapshots.latest(app, version)
    if with_data and snap is None:
        raise SpecError(f"there is no snapshot of the data of {version} (satchel snapshots lists them)")
    if not with_data and snap is not None:
        reporter.step(f"the data volumes are left as they are; --with-data would bring back the snapshot of "
                      f"{version}'s data taken {snap.taken}")
    return snap if with_data else None


def _rollback_target(app: App, to: str | None) -> str:
    """The release named, else the previous healthy one; it must be kept on this host."""
    target = to or releases.previous_version(app)
    if target is None:
        raise SpecError("there is no earlier release on this host to roll back to")
    if not releases.exists(app, target):
        have = ", ".join(releases.installed_versions(app)) or "none"
        raise SpecError(f"release {target} is not kept on this host (kept: {have})")
    return target
