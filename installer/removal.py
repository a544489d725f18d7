"""satchel remove: an application leaves the host. Its containers and networks stop and go,
then its releases, then every blob and registry copy no other application needs (gc.py).
Its data volumes, configuration, secrets and history stay for a later install unless
`purge`; the host-level history records the removal either way.

The journal (op=remove) makes it finish after a crash: the next command completes it."""

from __future__ import annotations

import shutil

from bundler.errors import SpecError
from bundler.progress import QUIET, Reporter

from . import faults, gc, releases
from .options import Outcome
from .state import App
from .targets import for_release


def remove(app: App, purge: bool, lock_wait: float = 0, reporter: Reporter = QUIET) -> Outcome:
    """Checks the environment (the engine answers, the project is this application's) before any change."""
    with app.host.lock(lock_wait):
        if not app.installed():
            raise SpecError(f"no application {app.name!r} on this host")
        current = app.current()
        release = releases.load(app, current) if current and releases.exists(app, current) else None
        if release is not None:
            for_release(release).check(release.project, app.owned_dirs())
        versions = sorted(p.name for p in app.releases.glob("[!.]*"))
        app.begin(op="remove", purge=purge, versions=versions)
        finish(app, purge, reporter)
        return Outcome("removed", current or "", app=app.name, removed=versions)


def finish(app: App, purge: bool, reporter: Reporter) -> None:
    """Every step again, each one done only if it is still to do: after a crash this completes it."""
    current = app.current()
    if current and releases.exists(app, current):
        release = releases.load(app, current)
        reporter.step(f"stopping {app.name} {current} (project {release.project})"
                      + (" and deleting its volumes" if purge else ""))
        for_release(release).remove(release, volumes=purge)
    app.host.record("removed", app=app.name, versions=(app.journal() or {}).get("versions", []), purge=purge)
    faults.point("during-removal")
    app.switch(None)
    shutil.rmtree(app.releases, ignore_errors=True)
    shutil.rmtree(app.dir / "secrets" / "env", ignore_errors=True)   # per-release settings files
    shutil.rmtree(app.reports, ignore_errors=True)
    app.end()
    if purge:
        shutil.rmtree(app.dir, ignore_errors=True)
    collected = gc.collect(app.host, reporter)
    reporter.step(f"removed {app.name}; {collected.store_blobs} blob(s) ({collected.store_bytes >> 20} MiB) and "
                  f"{collected.registry_manifests} registry manifest(s) no other application needs were deleted")
