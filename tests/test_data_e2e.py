"""Data-safe switches against the real engine: a migration hook writes into the data volume,
the new release fails, and the old one comes back on byte-identical data; rollback with and
without --with-data; a snapshot that does not fit refuses the switch before anything stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hosts import BROKEN, Host, make_bundle
from tests.infra import docker

VOLUME = "    volumes: [appdata:/data]\n"
DATA = "data:\n  - volume: appdata\n"
# 1.3.0 makes the data consistent with a command (a dump, as a database would) instead of stopping web.
DUMP = ('data:\n  - volume: appdata\n    quiesce: command\n    service: web\n'
        '    command: [/bin/busybox, sh, -c, "echo dumped > /data/dump"]\n')
SLOW_HOOK = ('hooks:\n  before-switch:\n    service: web\n    timeout: 3s\n'
             '    command: [/bin/busybox, sh, -c, "echo half-migrated > /data/schema; /bin/busybox sleep 600"]\n')
MIGRATE = ('hooks:\n  before-switch:\n    service: web\n'
           '    command: [/bin/busybox, sh, -c, "echo schema-v2 > /data/schema && echo migrated"]\n')


@pytest.fixture(scope="module")
def data_app(tmp_path_factory, keys) -> dict[str, Path]:
    """1.0.0 keeps its data in volume appdata; 1.1.0 migrates it (a schema-v2 marker) and is
    healthy; 1.2.0 migrates it and then fails its health check; 1.3.0 dumps, migrates it and is
    watched for 10 s; 1.4.0 migrates it, passes its health check for 20 s, then fails it inside its
    60 s watch window; 1.5.0's migration does half its work and runs out of time."""
    base = tmp_path_factory.mktemp("data-e2e")
    common = {"web_extra": VOLUME, "compose_extra": "volumes:\n  appdata:\n"}
    watch = "health: {watch: %s, period: 2s, initial-delay: 0s, failure-threshold: 2}\n"
    later = ('["/bin/busybox", "sh", "-c", "/bin/busybox touch /www/ok; (/bin/busybox sleep 20; /bin/busybox rm /www/ok) & '
             'exec /bin/busybox httpd -f -p 8080 -h /www"]')
    return {"1.0.0": make_bundle(base / "1.0.0", "1.0.0", keys, spec_extra=DATA, **common),
            "1.1.0": make_bundle(base / "1.1.0", "1.1.0", keys, spec_extra=DATA + MIGRATE, **common),
            "1.2.0": make_bundle(base / "1.2.0", "1.2.0", keys, spec_extra=DATA + MIGRATE, healthcheck=BROKEN,
                                 **common),
            "1.3.0": make_bundle(base / "1.3.0", "1.3.0", keys, spec_extra=DUMP + MIGRATE + watch % "10s",
                                 **common),
            "1.5.0": make_bundle(base / "1.5.0", "1.5.0", keys, spec_extra=DATA + SLOW_HOOK, **common),
            "1.4.0": make_bundle(base / "1.4.0", "1.4.0", keys, spec_extra=DATA + MIGRATE + watch % "60s",
                                 web_command=later, healthcheck='["CMD", "/bin/busybox", "test", "-f", "/www/ok"]',
                                 **common)}


def volume_files(host: Host, image: str) -> dict[str, str]:
    """Each file of the app's data volume -> its sha256, read through a container of its own."""
    out = docker("run", "--rm", "-v", f"{host.project}_appdata:/d:ro", image, "/bin/busybox", "sh", "-c",
                 "cd /d && /bin/busybox find . -type f | /bin/busybox sort | /bin/busybox xargs -r "
                 "/bin/busybox sha256sum")
    return {name: digest for digest, name in (line.split() for line in out.splitlines())}


def running_with_rows(host: Host, bundle: Path, image: str) -> dict[str, str]:
    """Install `bundle`, let its web service write rows into the volume; the volume's files."""
    assert host.install(bundle).returncode == 0
    docker("exec", host.containers()["web"]["Id"], "/bin/busybox", "sh", "-c",
           f"echo 'rows written under {bundle.name}' > /data/rows")
    return volume_files(host, image)


def test_a_failed_upgrade_comes_back_on_the_data_it_had(host, data_app, engine_image):
    before = running_with_rows(host, data_app["1.0.0"], engine_image)
    res = host.install(data_app["1.2.0"])
    assert res.returncode == 5, res.stderr
    assert "1.0.0 was restored with its data" in res.stderr
    assert host.served_version() == "hello 1.0.0"
    assert volume_files(host, engine_image) == before and "./schema" not in before
    listed = host.run("snapshots", "--json")
    assert '"release": "1.0.0"' in listed.stdout and "1.2.0" in listed.stdout
    report = next(host.state.reports.iterdir()).read_text()
    assert "before-switch hook succeeded; its last output:\n    migrated" in report
    assert "likely cause: a failing health probe" in report
    assert f"container {host.project}-web-1: running, exit code 0, restarted 0 times" in report


def test_rollback_leaves_the_data_or_brings_back_the_releases_own(host, data_app, engine_image):
    of_1_0_0 = running_with_rows(host, data_app["1.0.0"], engine_image)
    of_1_1_0 = running_with_rows(host, data_app["1.1.0"], engine_image)
    assert "./schema" in of_1_1_0
    assert host.run("rollback", "--with-data").returncode == 0
    assert volume_files(host, engine_image) == of_1_0_0 and host.served_version() == "hello 1.0.0"
    assert host.run("rollback", "--to", "1.1.0", "--with-data").returncode == 0
    assert volume_files(host, engine_image) == of_1_1_0 and host.served_version() == "hello 1.1.0"
    res = host.run("rollback")
    assert res.returncode == 0, res.stderr
    assert "the data volumes are left as they are; --with-data would bring back" in res.stderr
    assert volume_files(host, engine_image) == of_1_1_0 and host.served_version() == "hello 1.0.0"


def test_a_snapshot_that_does_not_fit_refuses_the_switch_before_anything_stops(host, data_app):
    assert host.install(data_app["1.0.0"]).returncode == 0
    before = host.snapshot()
    res = host.install(data_app["1.1.0"], env={"SATCHEL_SPACE_MARGIN": str(1 << 60)})
    assert res.returncode == 4, res.stderr
    assert "a snapshot of appdata needs up to" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert host.snapshot() == before            # judged right after the signature check: nothing written


@pytest.mark.parametrize(("point", "bundle", "rerun", "ends_on"), [
    ("during-snapshot", "1.1.0", "1.1.0", "1.1.0"),     # killed copying the data: the upgrade is finished
    ("during-restore", "1.2.0", "1.0.0", "1.0.0"),      # killed putting it back: the old release on its data
    ("during-watch", "1.3.0", "1.3.0", "1.3.0"),        # killed watching: the re-run watches on, and keeps it
])
def test_kill_9_in_a_data_step_then_a_rerun_ends_on_one_release_and_its_own_data(host, data_app, engine_image,
                                                                               point, bundle, rerun, ends_on):
    of_1_0_0 = running_with_rows(host, data_app["1.0.0"], engine_image)
    res = host.install(data_app[bundle], env={"SATCHEL_CRASH_AT": point})
    assert res.returncode == -9, res.stderr
    res = host.install(data_app[rerun])
    assert res.returncode == 0, res.stderr
    assert host.state.current() == ends_on and host.served_version() == f"hello {ends_on}"
    assert host.state.journal() is None
    data = volume_files(host, engine_image)
    if ends_on == "1.0.0":
        assert data == of_1_0_0
    else:
        assert data["./rows"] == of_1_0_0["./rows"] and "./schema" in data
    assert ("./dump" in data) == (bundle == "1.3.0")         # 1.3.0 asks for a dump before the snapshot


@pytest.mark.parametrize(("bundle", "said"), [
    # Passes its start, fails 20 s later inside its 60 s watch window.
    ("1.4.0", ["1.4.0 failed during the watch (2 checks in a row failed during the watch",
               "1.0.0 was restored with its data"]),
    # Its migration writes half its work and runs out of time: stopped, and undone.
    ("1.5.0", ["the before-switch hook failed: docker compose run did not finish within 3s",
               "1.0.0 runs on with the data it had"]),
])
def test_a_late_failure_or_a_hook_out_of_time_goes_back_with_the_data(host, data_app, engine_image, bundle, said):
    before = running_with_rows(host, data_app["1.0.0"], engine_image)
    res = host.install(data_app[bundle])
    assert res.returncode == 5, res.stderr
    assert all(line in res.stderr for line in said), res.stderr
    assert host.served_version() == "hello 1.0.0" and volume_files(host, engine_image) == before
    assert not docker("ps", "-aq", "--filter", f"name={host.project}-hook-")     # no hook container left
