"""The install / rollback / recovery state machine in memory: real signed bundles, the real
content store and state root on disk, an in-memory registry and a dummy target in place of
Docker. A crash is an os._exit at a failure point in a forked child, as abrupt as kill -9;
the sweep crashes at every point each operation passes and checks that the next run finishes
the job. The end-to-end kill -9 tests with Docker stay (tests/test_install_e2e.py)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bundler.errors import BundleError, EnvironmentProblem
from bundler.manifest import parse_manifest
from bundler.oci.model import Descriptor
from installer import faults, releases, targets
from installer.configure import apply_config
from installer.errors import DeployFailedRestored, StoreDamaged
from installer.install import install, rollback
from installer.options import InstallOptions
from installer.removal import remove
from installer.state import App, Host
from signing.keys import load_verify_key
from tests.conftest import CRASH_POINTS, CRASH_SWEEP, HOSTILE_COUNTS
from tests.dummy_target import DummyTarget, MemoryRegistry
from tests.hosts import make_bundle
from tests.legacy import to_single_app_layout

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sm-bundles")
    return {v: make_bundle(base / v, v, keys) for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0")}


def test_a_new_target_in_one_file_drives_install_and_rollback(world, bundles):
    host, target, opts = world
    app = host.app("hello")
    assert install(host, bundles["1.0.0"], opts).action == "installed"
    assert app.current() == "1.0.0" and target.running() == "1.0.0"
    assert releases.load(app, "1.0.0").info.target == "dummy"
    assert install(host, bundles["1.1.0"], opts).previous == "1.0.0"
    assert target.running() == "1.1.0"
    with pytest.raises(DeployFailedRestored, match=r"1\.2\.0 failed its health check"):
        install(host, bundles["1.2.0"], opts)
    assert app.current() == "1.1.0" and target.running() == "1.1.0"
    report = next(app.reports.iterdir()).read_text()
    assert "service app: running unhealthy" in report and "    1.2.0 says hello" in report
    assert rollback(app, None, opts).version == "1.0.0"
    assert app.current() == "1.0.0" and target.running() == "1.0.0"
    events = [(e["event"], e.get("version")) for e in app.history()]
    assert ("failed", "1.2.0") in events and events[-1] == ("rolled-back", "1.0.0")


def in_child(run: Callable[[], object], crash_at: str, nth: int = 0) -> int:
    """Run in a forked child; os._exit(137) the `nth` (from 0) time it reaches `crash_at`.
    The child's exit status."""
    pid = os.fork()
    if pid == 0:
        code = 0
        reached = []

        def hook(name: str) -> None:
            if name == crash_at and len(reached) == nth:
                os._exit(137)
            reached.extend([name] if name == crash_at else [])

        try:
            faults.arm(hook)
            run()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def points_passed(run: Callable[[], object]) -> list[str]:
    seen: list[str] = []
    faults.arm(seen.append)
    try:
        run()
    finally:
        faults.arm(None)
    return seen


def consistent(app: App, allowed: set[str | None]) -> str | None:
    """`current` is one complete release of `allowed`: its release.json and all its blobs.
    A migration cut short leaves it where the single-application layout kept it."""
    legacy = app.host.path / "current"
    current = Path(os.readlink(legacy)).name if legacy.is_symlink() else app.current()
    assert current in allowed, current
    if current is None:
        return None
    releases_dir = app.releases if (app.releases / current).is_dir() else app.host.path / "releases"
    manifest = parse_manifest((releases_dir / current / "manifest.json").read_bytes())
    assert all(app.store.has(Descriptor("", d, s)) for d, s in manifest.all_blobs.items())
    return current


def _volume(app: App) -> dict[str, str]:
    """The dummy target's volume db (beside the roots of the sweep: tests/dummy_target.py)."""
    db = app.host.path.parent / "volumes" / "db"
    return {p.name: p.read_text() for p in sorted(db.iterdir())} if db.is_dir() else {}


def _scenarios(bundles: dict[str, Path], data: dict[str, Path]):
    """(name, set-up, operation, states allowed after a crash, check of the finished state)."""

    def upgrade_from_1_0_0(host, opts):
        install(host, bundles["1.0.0"], opts)

    def two_installed(host, opts):
        for v in ("1.0.0", "1.1.0"):
            install(host, bundles[v], opts)

    def single_app_layout(host, opts):
        upgrade_from_1_0_0(host, opts)
        to_single_app_layout(host.path, "hello")

    def config_release(app):
        return (app.current() or "").startswith("1.0.0+config.")

    def data_1_0_0(host, opts):
        install(host, data["1.0.0"], opts)
        (host.path.parent / "volumes" / "db" / "rows").write_text("rows")

    def data_1_1_0(host, opts):
        data_1_0_0(host, opts)
        install(host, data["1.1.0"], opts)

    def failing(host, opts):
        with contextlib.suppress(DeployFailedRestored):
            install(host, data["1.2.0"], opts)

    return [
        ("install", upgrade_from_1_0_0, lambda host, opts: install(host, bundles["1.1.0"], opts),
         {"1.0.0", "1.1.0"}, lambda app: app.current() == "1.1.0"),
        ("install + retention", two_installed, lambda host, opts: install(host, bundles["1.3.0"], opts),
         {"1.1.0", "1.3.0"}, lambda app: app.current() == "1.3.0"),
        ("rollback", two_installed, lambda host, opts: rollback(host.app("hello"), None, opts),
         {"1.0.0", "1.1.0"}, lambda app: app.current() == "1.0.0"),
        ("config apply", upgrade_from_1_0_0, lambda host, opts: apply_config(host.app("hello"), opts),
         {"1.0.0", "1.0.0+config.1"}, config_release),
        ("migration + install", single_app_layout, lambda host, opts: install(host, bundles["1.1.0"], opts),
         {"1.0.0", "1.1.0"}, lambda app: app.current() == "1.1.0"),
        ("remove", two_installed, lambda host, opts: remove(host.app("hello"), False),
         {"1.1.0", None}, lambda app: not app.installed() and not list(app.store.blobs.iterdir())),
        ("install with data and a hook", data_1_0_0, lambda host, opts: install(host, data["1.1.0"], opts),
         {"1.0.0", "1.1.0"}, lambda app: app.current() == "1.1.0" and _volume(app) == {"rows": "rows", "schema": "v2"}),
        ("failing install with data", data_1_1_0, failing, {"1.1.0", "1.2.0"},
         lambda app: app.current() == "1.1.0" and _volume(app) == {"rows": "rows", "schema": "v2"}),
        ("rollback with data", data_1_1_0,
         lambda host, opts: rollback(host.app("hello"), None, replace(opts, with_data=True)),
         {"1.0.0", "1.1.0"}, lambda app: app.current() == "1.0.0" and _volume(app) == {"rows": "rows"}),
    ]


def test_crash_at_every_failure_point_then_the_next_run_finishes(tmp_path, keys, bundles, data_bundles, monkeypatch):
    reached: set[str] = set()
    for name, setup, operation, allowed, finished in _scenarios(bundles, data_bundles):
        base = tmp_path / re.sub(r"\W+", "-", name)
        target = DummyTarget(base / "running", broken={"1.2.0"})
        monkeypatch.setitem(targets.REGISTERED, "dummy", target)
        opts = InstallOptions(keys=[load_verify_key(keys["vendor.pub"])], target="dummy", sink=MemoryRegistry(),
                              wait_timeout=5, keep=2)
        template = base / "template"
        setup(Host(template), opts)
        shutil.copy(target.state, base / "template-running")
        volumes = base / "volumes"
        if volumes.is_dir():
            shutil.copytree(volumes, base / "template-volumes")

        def engine_as_set_up(base=base, volumes=volumes, target=target):
            shutil.copy(base / "template-running", target.state)
            if volumes.is_dir():
                shutil.rmtree(volumes)
                shutil.copytree(base / "template-volumes", volumes)

        probe = base / "probe"
        shutil.copytree(template, probe, symlinks=True)
        points = points_passed(lambda op=operation, probe=probe, opts=opts: op(Host(probe), opts))
        assert points, name
        for i, point in enumerate(points):
            nth = points[:i].count(point)
            root_dir = base / f"crash-{point}-{nth}"
            shutil.copytree(template, root_dir, symlinks=True)
            engine_as_set_up()
            host = Host(root_dir)
            app = host.app("hello")
            code = in_child(lambda op=operation, host=host, opts=opts: op(host, opts), point, nth)
            assert code == 137, (name, point, code)
            consistent(app, allowed)
            operation(host, opts)                            # the next run finishes the job
            assert finished(app), (name, point, app.current())
            assert app.journal() is None and not list(host.staging.iterdir())
            assert target.running() == app.current()
            CRASH_SWEEP[name] += 1
        reached |= set(points)
    # The points inside a real target's own steps (blue-green) are the real-engine tests' to
    # reach: tests/test_bluegreen_e2e.py kills Satchel at each of them.
    everywhere = set(re.findall(r'faults\.point\("([a-z-]+)"\)',
                                "".join(p.read_text() for p in (REPO / "installer").rglob("*.py")
                                        if p.parent.name != "targets")))
    assert reached == everywhere, everywhere - reached
    CRASH_POINTS.update(reached)


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_another_build_of_a_kept_version_is_refused_and_never_overwrites(world, bundles, tmp_path, keys):
    host, target, opts = world
    app = host.app("hello")
    for v in ("1.0.0", "1.1.0"):
        install(host, bundles[v], opts)
    other = make_bundle(tmp_path / "other", "1.1.0", keys, web_extra="    labels: [rebuilt=yes]\n")
    broken = make_bundle(tmp_path / "broken", "1.2.0", keys)
    before = tree(host.path)
    with pytest.raises(BundleError, match=r"hello 1\.1\.0 is already on this host from another build"):
        install(host, other, opts)
    assert tree(host.path) == before
    kept = tree(app.releases / "1.1.0")
    out = install(host, other, replace(opts, replace_build=True))
    assert out.version == "1.1.0+install.1" and app.current() == "1.1.0+install.1"
    assert tree(app.releases / "1.1.0") == kept                         # the kept build is untouched
    # Re-installing a kept release (here after a downgrade) gets a directory of its own too.
    assert install(host, bundles["1.0.0"], replace(opts, allow_downgrade=True)).version == "1.0.0+install.1"
    target.broken.add("1.2.0")
    with pytest.raises(DeployFailedRestored):
        install(host, broken, opts)
    assert app.current() == "1.0.0+install.1" and tree(app.releases / "1.1.0") == kept
    HOSTILE_COUNTS["same version, other bytes"] += 1


def test_versions_with_build_metadata_install_configure_and_upgrade(world, tmp_path, keys):
    host, target, opts = world
    app = host.app("hello")
    first, second = (make_bundle(tmp_path / v, v, keys) for v in ("1.0.0+build.5", "1.0.1+build.6"))
    assert install(host, first, opts).version == "1.0.0+build.5"
    assert apply_config(app, opts).version == "1.0.0+build.5+config.1"
    assert install(host, second, opts).previous == "1.0.0+build.5+config.1"
    assert app.current() == "1.0.1+build.6" and target.running() == "1.0.1+build.6"
    assert install(host, second, opts).action == "already-installed"


def test_a_missing_current_release_is_a_clear_error_and_an_install_repairs_it(world, bundles):
    host, _, opts = world
    app = host.app("hello")
    for v in ("1.0.0", "1.1.0"):
        install(host, bundles[v], opts)
    shutil.rmtree(app.releases / "1.1.0")
    with pytest.raises(EnvironmentProblem, match=r"release 1\.1\.0 of hello is missing .*satchel rollback --to"):
        apply_config(app, opts)
    assert rollback(app, "1.0.0", opts).version == "1.0.0"
    shutil.rmtree(app.releases / "1.0.0")
    assert install(host, bundles["1.3.0"], opts).action == "installed" and app.current() == "1.3.0"


def test_a_damaged_store_blob_is_found_where_used_and_repaired_from_the_bundle(world, bundles, cli, keys):
    host, _, opts = world
    app = host.app("hello")
    for v in ("1.0.0", "1.1.0"):
        install(host, bundles[v], opts)
    old = releases.load(app, "1.0.0").manifest()
    layer = next(d for d in old.all_blobs if d not in releases.load(app, "1.1.0").manifest().all_blobs
                 and old.all_blobs[d] > 1000)
    path = host.store.path(layer)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1                                    # one bit, same size
    path.write_bytes(bytes(data))
    opts.sink.blobs.discard(layer)                               # the registry lost it: a rollback must push it
    with pytest.raises(StoreDamaged, match=r"store verify --repair BUNDLE"):
        rollback(app, "1.0.0", opts)
    assert app.current() == "1.1.0"
    res = cli("--root", host.path, "store", "verify", "--json")
    assert res.code == 4 and json.loads(res.out)["damaged"] == [layer], res.out
    res = cli("--root", host.path, "store", "verify", "--repair", bundles["1.0.0"], "--key", keys["vendor.pub"], "--json")
    assert res.code == 0 and json.loads(res.out)["repaired"] == 1, res.err
    assert rollback(app, "1.0.0", opts).version == "1.0.0"
    # Re-installing the bundle of the current release re-hashes its blobs and puts back a damaged one.
    path = host.store.path(layer)
    path.write_bytes(b"x" * path.stat().st_size)
    out = install(host, bundles["1.0.0"], opts)
    assert out.action == "already-installed" and out.repaired == 1 and host.store.intact(
        Descriptor("", layer, old.all_blobs[layer]))
    HOSTILE_COUNTS["damaged store"] += 1
