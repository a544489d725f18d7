"""The switch every operation ends with, and the recovery that lets a re-run finish it.

Invariant: with no journal, `current` names a complete release that was last seen healthy.
The journal records the switch in progress, so that after a crash (even kill -9) the next
command either completes it or undoes it."""

from __future__ import annotations

from bundler.progress import Reporter

from . import faults, releases, rollback_report
from .errors import DeployFailedRestored, DeployFailedUnrestored
from .options import InstallOptions
from .state import Root
from .targets import for_release


def deploy(root: Root, version: str, previous: str | None, opts: InstallOptions, reporter: Reporter,
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
        deploy(root, to, frm, opts, reporter, event)
        return job
    # The switch never happened: the old release is current and was never stopped.
    root.record("interrupted", op=job.get("op"), version=to)
    root.end()
    return None
