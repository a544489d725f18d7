"""The switch every operation ends with, and the recovery that lets a re-run finish it.

Invariant: with no journal, `current` names a complete release that was last seen healthy.
The journal records the switch in progress, so that after a crash (even kill -9) the next
command either completes it or undoes it."""

from __future__ import annotations

import shutil

from bundler.progress import Reporter

from . import faults, releases, removal, rollback_report
from .errors import DeployFailedRestored, DeployFailedUnrestored
from .options import InstallOptions
from .state import App, Host
from .targets import for_release


def deploy(app: App, version: str, previous: str | None, opts: InstallOptions, reporter: Reporter,
            event: str) -> None:
    """Switch `current` to version and apply it; on failure restore `previous` (exit 5/6)."""
    release = releases.load(app, version)
    faults.point("before-switch")
    app.switch(version)
    app.record("switch", version=version, previous=previous)
    faults.point("after-switch")
    ok, detail = start(release, opts, reporter, f"starting {release.project} {version}")
    faults.point("after-apply")
    if ok:
        app.record(event, version=version, previous=previous)
        app.end()
        return
    app.record("failed", version=version, reason=detail)
    draft = rollback_report.gather(app, release, previous, detail)
    if previous is None:
        for_release(release).stop(release)
        app.switch(None)
        app.end()
        reporter.step(rollback_report.write(app, release, draft).rstrip())
        raise DeployFailedRestored(f"{version} failed its health check ({detail}); there was no previous "
                                   "release, so it was stopped")
    old = releases.load(app, previous)
    app.switch(previous)
    restored, why = start(old, opts, reporter, f"restoring {previous}")
    app.end()
    # The report is redacted and written only now: the restore does not wait for it.
    reporter.step(rollback_report.write(app, release, draft).rstrip())
    if restored:
        app.record("rolled-back", version=previous, reason=f"{version} failed its health check")
        raise DeployFailedRestored(f"{version} failed its health check ({detail}); {previous} was restored")
    app.record("failed", version=previous, reason=why)
    raise DeployFailedUnrestored(f"{version} failed its health check ({detail}), and restoring {previous} "
                                 f"failed too ({why}); see satchel status")


def start(release: releases.Release, opts: InstallOptions, reporter: Reporter, doing: str) -> tuple[bool, str]:
    """Apply the release and wait for it to be healthy, each service's state on show: (healthy, detail)."""
    with reporter.waiting(f"{doing} (waiting up to {opts.wait_timeout}s for health)") as observe:
        return for_release(release).apply(release, opts.wait_timeout, observe)


def recover_host(host: Host, opts: InstallOptions, reporter: Reporter) -> None:
    """Before an install (which may concern any application): bundles half-verified by a
    killed run are dropped, and every application's interrupted operation finished or undone."""
    for leftover in host.staging.iterdir() if host.staging.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)
    for app in host.apps():
        recover(app, opts, reporter)


def recover(app: App, opts: InstallOptions, reporter: Reporter) -> dict[str, str] | None:
    """Finish or undo the operation a killed run left in the journal; returns it if it was
    finished (its switch had happened), None if there was nothing to finish."""
    releases.clean_leftovers(app)
    job = app.journal()
    if job is None:
        return None
    if job.get("op") == "remove":
        reporter.step(f"finishing the interrupted removal of {app.name}")
        removal.finish(app, bool(job.get("purge")), reporter)
        return job
    to, frm = job.get("to"), job.get("from")
    if app.current() == to and to is not None and releases.exists(app, to):
        reporter.step(f"finishing an interrupted {job.get('op')} of {to}")
        event = {"install": "installed", "config": "configured"}.get(str(job.get("op")), "rolled-back")
        deploy(app, to, frm, opts, reporter, event)
        return job
    # The switch never happened: the old release is current and was never stopped.
    app.record("interrupted", op=job.get("op"), version=to)
    app.end()
    return None
