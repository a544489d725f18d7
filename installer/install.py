"""The install transaction: the story of one install, and of one rollback. Each step is
idempotent; the journal (switch.py) lets a re-run finish what a crash interrupted.

    lock -> finish or undo a killed run -> take the bundle in (verify, stage, promote: intake.py)
    -> push its images -> render the release -> commit it -> switch and apply (switch.py)
    -> replace the kit if the bundle carries one -> retention
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bundler.errors import SpecError
from bundler.oci.registry import Endpoint, RegistryClient
from bundler.progress import QUIET, Reporter

from . import faults, releases, selfupdate, targets
from .config import config_info
from .errors import DeployFailedUnrestored
from .intake import AlreadyInstalled, project_for, take_in
from .options import InstallOptions, Outcome
from .push import RegistrySink, push_release
from .releases import ReleaseInfo
from .state import Root
from .switch import deploy, recover
from .targets import RenderRequest, for_release
from .tools.registry import ManagedRegistry


def registry_client(root: Root, opts: InstallOptions) -> RegistrySink:
    if opts.sink:
        return opts.sink
    if opts.registry:
        return RegistryClient(Endpoint(opts.registry, insecure=opts.registry_insecure, ca_file=opts.registry_ca))
    return RegistryClient(Endpoint(ManagedRegistry(root.registry_dir).ensure_running()))


def install(root: Root, bundle: Path, opts: InstallOptions, reporter: Reporter = QUIET) -> Outcome:
    root.init()
    with root.lock(opts.lock_wait):
        recover(root, opts, reporter)
        current = root.current()
        try:
            intake = take_in(root, bundle, opts, current, reporter)
        except AlreadyInstalled as done:
            selfupdate.apply(root, releases.load(root, str(done)).manifest(), reporter)  # finishes a killed run's
            return Outcome("already-installed", str(done), releases.previous_version(root))
        faults.point("after-promote")

        manifest, version = intake.manifest, intake.manifest.version
        project = project_for(root, opts, current, manifest)
        root.begin(op="install", to=version, **{"from": current})
        client = registry_client(root, opts)
        reporter.step(f"pushing images to {client.endpoint.host}")
        pushed = push_release(root.store, client, manifest)
        faults.point("after-push")

        tmp = releases.staging_dir(root, version)
        target = targets.choose(opts.target, manifest)
        rendered = target.render(RenderRequest(manifest, root.store, client.endpoint.host, opts.registry_insecure,
                                               tmp, opts.helm))
        info = ReleaseInfo(name=manifest.name, version=version, project=project, registry=client.endpoint.host,
                           target=target.name, **rendered, **config_info(root, version, manifest, intake.resolved))
        releases.write_metadata(tmp, intake.manifest_bytes, intake.signatures, info)
        if opts.render_only is not None:
            shutil.copytree(tmp, opts.render_only, dirs_exist_ok=True)
            shutil.rmtree(tmp)
            root.end()
            return Outcome("rendered", version, current, pushed)
        faults.point("before-commit")
        releases.commit(root, tmp, version)

        deploy(root, version, current, opts, reporter, "installed")
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
        for_release(release).check(release.project, root.releases)
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
        deploy(root, target_version, current, opts, reporter, "rolled-back")
        if current:
            selfupdate.restore(root, current, reporter)
        return Outcome("rolled-back", target_version, current)
