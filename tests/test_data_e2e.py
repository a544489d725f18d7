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
MIGRATE = ('hooks:\n  before-switch:\n    service: web\n'
           '    command: [/bin/busybox, sh, -c, "echo schema-v2 > /data/schema && echo migrated"]\n')


@pytest.fixture(scope="module")
def data_app(tmp_path_factory, keys) -> dict[str, Path]:
    """1.0.0 keeps its data in volume appdata; 1.1.0 migrates it (a schema-v2 marker) and is
    healthy; 1.2.0 migrates it and then fails its health check."""
    base = tmp_path_factory.mktemp("data-e2e")
    common = {"web_extra": VOLUME, "compose_extra": "volumes:\n  appdata:\n"}
    return {"1.0.0": make_bundle(base / "1.0.0", "1.0.0", keys, spec_extra=DATA, **common),
            "1.1.0": make_bundle(base / "1.1.0", "1.1.0", keys, spec_extra=DATA + MIGRATE, **common),
            "1.2.0": make_bundle(base / "1.2.0", "1.2.0", keys, spec_extra=DATA + MIGRATE, healthcheck=BROKEN,
                                 **common)}


def volume_files(host: Host, image: str) -> dict[str, str]:
    """Each file of the app's data volume -> its sha256, read through a container of its own."""
    out = docker("run", "--rm", "-v", f"{host.project}_appdata:/d:ro", image, "/bin/busybox", "sh", "-c",
                 "cd /d && /bin/busybox find . -type f | /bin/busybox sort | /bin/busybox xargs -r "
                 "/bin/busybox sha256sum")
    return {name: digest for digest, name in (line.split() for line in out.splitlines())}


def write_rows(host: Host, text: str) -> None:
    docker("exec", host.containers()["web"]["Id"], "/bin/busybox", "sh", "-c", f"echo '{text}' > /data/rows")


def test_a_failed_upgrade_comes_back_on_the_data_it_had(host, data_app, engine_image):
    assert host.install(data_app["1.0.0"]).returncode == 0
    write_rows(host, "the customer rows")
    before = volume_files(host, engine_image)
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


def test_rollback_leaves_the_data_or_brings_back_the_releases_own(host, data_app, engine_image):
    assert host.install(data_app["1.0.0"]).returncode == 0
    write_rows(host, "rows of 1.0.0")
    of_1_0_0 = volume_files(host, engine_image)
    assert host.install(data_app["1.1.0"]).returncode == 0
    write_rows(host, "rows written under 1.1.0")
    of_1_1_0 = volume_files(host, engine_image)
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
