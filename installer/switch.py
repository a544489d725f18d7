"""The switch every operation ends with, and the recovery that lets a re-run finish it.

Invariant: with no journal, `current` names a complete release that was last seen healthy.
The journal records the switch in progress, so that after a crash (even kill -9) the next
command either completes it or undoes it."""

from __future__ import annotations

import shutil
from datetime import timedelta
from typing import Any

from bundler.lifecycle import HealthPolicy
from bundler.progress import Reporter
from signing.grammar import format_time, now_utc, parse_time

from . import faults, health, hooks, releases, removal, rollback_report, snapshots
from .errors import DeployFailedRestored, DeployFailedUnrestored
from .options import InstallOptions
from .state import App, Host
from .targets import for_release, staged_target, watched_target


def deploy(app: App, version: str, previous: str | None, opts: InstallOptions, reporter: Reporter,
           event: str, resumed: dict[str, Any] | None = None, data: snapshots.Snapshot | None = None) -> None:
    """Switch `current` to version and apply it; on failure restore `previous`, with the data it
    had (exit 5/6). Before the switch the data volumes are snapshotted and the vendor's
    before-switch (or before-rollback) hook runs; a re-run after a crash (`resumed`, the journal)
    keeps the snapshot taken then. `data`: a snapshot to put back before the release starts
    (rollback --with-data)."""
    release = releases.load(app, version)
    # A damaged previous release does not stop a switch away from it (only a restore needs it).
    old = releases.load(app, previous) if previous and releases.exists(app, previous) else None
    ran: list[hooks.HookResult] = []
    if resumed is None:
        snap = _prepare(app, release, old, opts, reporter, event, ran)
    else:
        snap = snapshots.load(app, resumed["snapshot"]) if resumed.get("snapshot") else None
        data = snapshots.load(app, resumed["data"]) if resumed.get("data") and not resumed.get("data_done") else None
    faults.point("before-switch")
    app.switch(version)
    app.record("switch", version=version, previous=previous)
    faults.point("after-switch")
    if data:
        snapshots.restore(app, data, old, reporter)
        app.note(data_done=True)
    ok, detail = _launch(release, opts, reporter, f"starting {release.project} {version}")
    why = f"failed its health check ({detail})"
    hook = hooks.run(app, release, "after-switch", reporter) if ok else None
    ran += [hook] if hook else []
    if hook and not hook.ok:
        ok, detail, why = False, hook.detail, f"failed: {hook.detail}"
    if ok:
        faults.point("before-cut-over")
        ok, detail = _go_live(release, opts, reporter)
        why = f"was not switched to ({detail})"
    if ok:
        ok, detail = _watch(app, release, opts, reporter, resumed)
        why = f"failed during the watch ({detail})"
    faults.point("after-apply")
    if ok:
        app.record(event, version=version, previous=previous, **_colour(release))
        app.end()
        return
    app.record("failed", version=version, reason=detail)
    draft = rollback_report.gather(app, release, previous, detail, ran)
    if staged := staged_target(release):
        staged.discard(release)         # never got the traffic: removed, and what served still does
    if old is None:
        for_release(release).stop(release)
        app.switch(None)
        app.end()
        reporter.step(rollback_report.write(app, release, draft).rstrip())
        if previous:
            raise DeployFailedUnrestored(f"{version} {why}, and the previous release {previous} is missing, so "
                                         "nothing runs; see satchel status")
        raise DeployFailedRestored(f"{version} {why}; there was no previous release, so it was stopped")
    app.switch(previous)
    restored, problem = _bring_back(app, old, release, snap, opts, reporter)
    app.end()
    # The report is redacted and written only now: the restore does not wait for it.
    reporter.step(rollback_report.write(app, release, draft).rstrip())
    if restored:
        app.record("rolled-back", version=previous, reason=f"{version} {why}", data=snap.id if snap else None,
                   **_colour(old))
        raise DeployFailedRestored(f"{version} {why}; {previous} was restored" + (" with its data" if snap else ""))
    app.record("failed", version=previous, reason=problem)
    raise DeployFailedUnrestored(f"{version} {why}, and restoring {previous} failed too ({problem}); "
                                 "see satchel status")


def _watch(app: App, release: releases.Release, opts: InstallOptions, reporter: Reporter,
           resumed: dict[str, Any] | None) -> tuple[bool, str]:
    """Keep watching the healthy release for the window its health policy (or --watch) sets;
    the end of the window goes in the journal, so that a re-run after a crash watches on until
    then (or, once it has passed, concludes from the health check it has just made)."""
    policy = release.manifest().lifecycle.health or HealthPolicy()
    window = opts.watch if opts.watch is not None else policy.watch
    target = watched_target(release)
    if not window or target is None:
        return True, ""
    until = parse_time(resumed["watch_until"]) if resumed and resumed.get("watch_until") else \
        now_utc() + timedelta(seconds=window)
    app.note(watch_until=format_time(until))
    faults.point("during-watch")
    left = (until - now_utc()).total_seconds()
    if left <= 0:
        return True, ""
    with reporter.waiting(f"watching {release.path.name} until {format_time(until)}: it is rolled back if it "
                          f"fails {policy.failure_threshold} checks in a row") as observe:
        return health.watch(lambda: target.containers(release), policy, left, observe)


def _prepare(app: App, new: releases.Release, old: releases.Release | None, opts: InstallOptions,
             reporter: Reporter, event: str, ran: list[hooks.HookResult]) -> snapshots.Snapshot | None:
    """Before the switch, while `old` still runs: snapshot its data, noted in the journal (from
    here on a crash brings the old release back on it), then the hook. A failing hook undoes
    what it may have done: the snapshot goes back and the old release runs on, untouched."""
    if old is None or app.current() != old.path.name:
        return None
    volumes = snapshots.declared(new.manifest(), old.manifest())
    first = (old, "before-rollback") if event == "rolled-back" and hooks.declared(old, "before-rollback") else \
        (new, "before-switch")
    if volumes or hooks.declared(*first):
        app.note(touched=True)       # services may stop, data may change: a crash brings `old` back
    snap = snapshots.take(app, old, volumes, f"before the switch to {new.path.name}", reporter) if volumes else None
    if snap:
        app.note(snapshot=snap.id)
    hook = hooks.run(app, *first, reporter)
    ran += [hook] if hook else []
    if hook is None or hook.ok:
        return snap
    app.record("failed", version=new.path.name, reason=hook.detail)
    draft = rollback_report.gather(app, new, old.path.name, hook.detail, ran)
    restored, why = _bring_back(app, old, None, snap, opts, reporter)
    app.end()
    reporter.step(rollback_report.write(app, new, draft).rstrip())
    if not restored:
        raise DeployFailedUnrestored(f"{hook.detail}, and {old.path.name} did not come back ({why}); "
                                     "see satchel status")
    raise DeployFailedRestored(f"{new.path.name} was not switched to: {hook.detail}; {old.path.name} runs on "
                               + ("with the data it had" if snap else "unchanged"))


def _bring_back(app: App, old: releases.Release, failed: releases.Release | None, snap: snapshots.Snapshot | None,
                opts: InstallOptions, reporter: Reporter) -> tuple[bool, str]:
    """Start `old` again, on the data it had when it was stopped when there is a snapshot (the
    failed release, or the hook's containers, are stopped first)."""
    if snap:
        snapshots.restore(app, snap, failed or old, reporter)
    return start(old, opts, reporter, f"restoring {old.path.name}")


def start(release: releases.Release, opts: InstallOptions, reporter: Reporter, doing: str) -> tuple[bool, str]:
    """Apply the release and wait for it to be healthy (and, blue-green, move the traffic to
    it): (healthy, detail)."""
    ok, detail = _launch(release, opts, reporter, doing)
    return _go_live(release, opts, reporter) if ok else (ok, detail)


def _launch(release: releases.Release, opts: InstallOptions, reporter: Reporter, doing: str) -> tuple[bool, str]:
    """Apply the release and wait for it to be healthy, each service's state on show. A
    blue-green release starts next to the one that serves, which it does not touch."""
    with reporter.waiting(f"{doing} (waiting up to {opts.wait_timeout}s for health)") as observe:
        return for_release(release).apply(release, opts.wait_timeout, observe)


def _colour(release: releases.Release) -> dict[str, str]:
    """For the history: the colour that serves a blue-green release."""
    staged = staged_target(release)
    live = staged.traffic(release)["live"] if staged else None
    return {"colour": live} if live else {}


def _go_live(release: releases.Release, opts: InstallOptions, reporter: Reporter) -> tuple[bool, str]:
    """Blue-green: the traffic moves to the started release in one step, the old one drains and stops."""
    staged = staged_target(release)
    if staged is None:
        return True, ""
    with reporter.waiting(f"moving the traffic to {release.path.name}") as observe:
        return staged.cut_over(release, opts.wait_timeout, observe)


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
        event = {"install": "installed", "config": "configured", "data": "data-restored"}.get(str(job.get("op")),
                                                                                             "rolled-back")
        deploy(app, to, frm, opts, reporter, event, resumed=job)
        return job
    # The switch never happened: the old release is current. If its services were stopped for
    # a snapshot, or a hook may have changed its data, it is brought back on the data it had.
    # A blue-green release that was started next to it is removed the same way.
    old = releases.load(app, frm) if frm and releases.exists(app, frm) else None
    if old and (job.get("touched") or staged_target(old)):
        snap = snapshots.load(app, job["snapshot"]) if job.get("snapshot") else None
        reporter.step(f"bringing {frm} back after an interrupted {job.get('op')}")
        _bring_back(app, old, None, snap, opts, reporter)
    app.record("interrupted", op=job.get("op"), version=to)
    app.end()
    return None
