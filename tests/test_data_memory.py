"""Data-safe switches, in memory (the dummy target keeps its volumes as directories): snapshots
before every switch, hooks, the automatic restore of the data, rollback with and without
--with-data, retention. The same story against the real engine is in test_data_e2e.py."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from bundler.errors import SpecError
from installer import snapshots
from installer.errors import DeployFailedRestored
from installer.install import install, restore_data, rollback
from tests.conftest import DATA, DB_VOLUME
from tests.hosts import make_bundle


def contents(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def running_with_rows(world, bundle: Path) -> dict[str, str]:
    """Install `bundle`, let it write its rows into volume db; the volume's contents."""
    host, target, opts = world
    install(host, bundle, opts)
    (target.volume_dir("db") / "rows").write_text(f"rows written under {bundle.name}\n")
    return contents(target.volume_dir("db"))


def test_a_failed_switch_brings_the_old_release_back_on_its_own_data(world, data_bundles):
    host, target, opts = world
    app = host.app("hello")
    before = running_with_rows(world, data_bundles["1.1.0"])
    db = target.volume_dir("db")
    with pytest.raises(DeployFailedRestored, match=r"1\.1\.0 was restored with its data"):
        install(host, data_bundles["1.2.0"], opts)
    assert app.current() == "1.1.0" and target.running() == "1.1.0"
    assert contents(db) == before                  # the v3 migration is gone, the rows are there
    [snap] = snapshots.listed(app)
    assert snap.release == "1.1.0" and "1.2.0" in snap.reason
    report = next(app.reports.iterdir()).read_text()
    assert "likely cause: a failing health probe" in report
    assert "before-switch hook succeeded; its last output:\n    wrote schema" in report


def test_a_failing_migration_leaves_the_old_release_and_its_data(world, data_bundles):
    host, target, opts = world
    app = host.app("hello")
    before = running_with_rows(world, data_bundles["1.0.0"])
    with pytest.raises(DeployFailedRestored, match=r"the before-switch hook failed: migration refused"):
        install(host, data_bundles["1.3.0"], opts)
    assert app.current() == "1.0.0" and target.running() == "1.0.0"
    assert contents(target.volume_dir("db")) == before
    assert app.journal() is None
    assert "likely cause: a failing hook" in next(app.reports.iterdir()).read_text()


def test_rollback_leaves_the_data_unless_asked_and_then_brings_back_the_targets(world, data_bundles):
    host, target, opts = world
    app = host.app("hello")
    db = target.volume_dir("db")
    of_1_0_0 = running_with_rows(world, data_bundles["1.0.0"])
    of_1_1_0 = running_with_rows(world, data_bundles["1.1.0"])
    assert (db / "schema").read_text() == "v2"
    rollback(app, None, replace(opts, with_data=True))
    assert app.current() == "1.0.0" and contents(db) == of_1_0_0
    rollback(app, "1.1.0", replace(opts, with_data=True))                 # forward, with 1.1.0's data
    assert app.current() == "1.1.0" and contents(db) == of_1_1_0
    rollback(app, "1.0.0", opts)
    assert app.current() == "1.0.0" and contents(db) == of_1_1_0          # left as it was
    assert app.journal() is None
    with pytest.raises(SpecError, match=r"no snapshot of the data of 1\.3\.0|not kept"):
        rollback(app, "1.3.0", replace(opts, with_data=True))


def test_snapshots_go_with_their_releases(world, data_bundles, tmp_path, keys):
    host, _, opts = world
    app = host.app("hello")
    opts = replace(opts, keep=2)
    for v in ("1.0.0", "1.1.0"):
        install(host, data_bundles[v], opts)
    later = make_bundle(tmp_path / "1.4.0", "1.4.0", keys, spec_extra=DATA, compose_extra=DB_VOLUME)
    install(host, later, opts)
    kept = {s.release for s in snapshots.listed(app)}
    assert kept == {"1.1.0"}            # 1.0.0's release went, and its snapshot with it


def test_a_release_that_fails_during_the_watch_is_rolled_back_with_the_data(world, data_bundles):
    host, target, opts = world
    app = host.app("hello")
    before = running_with_rows(world, data_bundles["1.0.0"])
    target.failing_later.add("1.1.0")
    with pytest.raises(DeployFailedRestored, match=r"1\.1\.0 failed during the watch \(1 checks in a row failed"):
        install(host, data_bundles["1.1.0"], opts)
    assert app.current() == "1.0.0" and contents(target.volume_dir("db")) == before
    assert app.journal() is None
    # --watch 0 on the command line: the customer's word over the vendor's.
    install(host, data_bundles["1.1.0"], replace(opts, watch=0))
    assert app.current() == "1.1.0"


def test_a_snapshot_is_put_back_under_the_current_release_and_what_it_replaced_is_kept(world, data_bundles):
    host, target, opts = world
    app = host.app("hello")
    of_1_0_0 = running_with_rows(world, data_bundles["1.0.0"])
    of_1_1_0 = running_with_rows(world, data_bundles["1.1.0"])
    rollback(app, None, opts)                                   # 1.0.0 on 1.1.0's data
    [first] = [s for s in snapshots.listed(app) if s.release == "1.0.0"]
    assert restore_data(app, first.id, opts).action == "data-restored"
    assert app.current() == "1.0.0" and target.running() == "1.0.0"
    assert contents(target.volume_dir("db")) == of_1_0_0 and app.journal() is None
    replaced = snapshots.latest(app, "1.0.0")
    assert replaced is not None and replaced.id != first.id            # the data it replaced, kept
    restore_data(app, replaced.id, opts)
    assert contents(target.volume_dir("db")) == of_1_1_0
