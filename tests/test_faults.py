"""Fault injection beyond kill -9: the disk filling up at every stage of an install (a small
tmpfs), and the registry dying in the middle of a push. Each run ends with `current` naming a
complete release, a one-line error (exit 4), and a re-run that finishes the job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from installer import state
from installer.tools.registry import ManagedRegistry
from tests.images import BUSYBOX
from tests.infra import docker, free_port
from tests.launch import RUN


def image_bundle(d: Path, version: str, keys, payload_kib: int) -> Path:
    (d / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, d / "rootfs" / "bin" / "busybox")
    (d / "rootfs" / "data.bin").write_bytes(os.urandom(payload_kib << 10))
    (d / "satchel.yaml").write_text(f"name: app\nversion: {version}\nimages:\n  - ref: acme/app:{version}\n"
                                    "    source: dir:rootfs\n")
    out = d / f"app-{version}.bundle"
    subprocess.run([sys.executable, "-c", RUN, "-q", "build", str(d / "satchel.yaml"), "-o", str(out),
                    "--key", str(keys["vendor"]), "--cache", str(d / "cache")], check=True)
    return out


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, keys) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("fault-bundles")
    return image_bundle(base / "a", "1.0.0", keys, 256), image_bundle(base / "b", "1.1.0", keys, 1024)


def satchel(root: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN, "--root", str(root), *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture
def disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def assert_consistent(root: Path) -> str:
    current = state.Host(root).app("app").current()
    assert current in ("1.0.0", "1.1.0")
    info = json.loads((root / "apps" / "app" / "releases" / current / "release.json").read_text())
    assert info["version"] == current
    return current


@pytest.mark.parametrize("margin", ["0", str(-(64 << 20))], ids=["space-check", "no-space-check"])
def test_disk_full_at_every_stage_of_an_install(disk, two_versions, keys, monkeypatch, margin):
    """With the space check on, a short disk is refused up front or fills the registry; with
    it defeated (negative margin), the disk fills during Satchel's own writes too."""
    old, new = two_versions
    monkeypatch.setenv("SATCHEL_SPACE_MARGIN", margin)
    outcomes = []
    for step in range(10):
        root = disk / f"root-{step}"
        monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
        try:
            assert satchel(root, "install", old, "--key", keys["vendor.pub"]).returncode == 0
            free = shutil.disk_usage(disk).free
            budget = int(new.stat().st_size * 3.2 * step / 9) + 4096
            filler = disk / "filler"
            with filler.open("wb") as fh:
                fh.truncate(0)
                fh.write(b"\0" * max(0, free - budget))
            res = satchel(root, "install", new, "--key", keys["vendor.pub"])
            assert res.returncode in (0, 4), res.stderr
            if res.returncode == 4:
                errors = [line for line in res.stderr.splitlines() if line.startswith("satchel: error:")]
                assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
                assert any(w in errors[0] for w in ("free space", "disk full", "disk is full")), res.stderr
            reason = errors[0].split(": ", 2)[-1][:70] if res.returncode == 4 else "installed"
            outcomes.append((step, res.returncode, assert_consistent(root), reason))
            filler.unlink()
            res = satchel(root, "install", new, "--key", keys["vendor.pub"])
            assert res.returncode == 0, (step, res.stderr)
            assert assert_consistent(root) == "1.1.0" and state.Host(root).app("app").journal() is None
        finally:
            ManagedRegistry(root / "registry").stop()
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(map(str, outcomes)))
    assert {code for _, code, _, _ in outcomes} == {0, 4}, outcomes   # the loop did hit full disks


def test_registry_dies_in_the_middle_of_a_push(tmp_path, two_versions, keys, monkeypatch):
    old, new = two_versions
    monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
    root = tmp_path / "root"
    try:
        assert satchel(root, "install", old, "--key", keys["vendor.pub"]).returncode == 0
        # Docker would restart it at once (tests/test_kit.py shows that): switch that off so the
        # registry stays dead and the install must face it.
        container = ManagedRegistry(root / "registry").container
        docker("update", "--restart=no", container)
        pidfile = tmp_path / "registry.pid"
        pidfile.write_text(str(json.loads(docker("inspect", container))[0]["State"]["Pid"]))
        res = satchel(root, "install", new, "--key", keys["vendor.pub"],
                      env={"SATCHEL_KILL_AT": f"during-push={pidfile}"})
        assert res.returncode == 4 and "cannot reach registry" in res.stderr, res.stderr
        assert assert_consistent(root) == "1.0.0"
        res = satchel(root, "install", new, "--key", keys["vendor.pub"])   # starts the registry, finishes
        assert res.returncode == 0, res.stderr
        assert assert_consistent(root) == "1.1.0"
        events = [e["event"] for e in state.Host(root).app("app").history()]
        assert events[-3:] == ["interrupted", "switch", "installed"]
    finally:
        ManagedRegistry(root / "registry").stop()


def test_kill_9_during_retention_then_rerun(tmp_path, keys, monkeypatch, tmp_path_factory):
    """Retention removes releases one by one, then unneeded blobs: a crash in between loses
    nothing current or previous needs, and the next install finishes the collection."""
    monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
    base = tmp_path_factory.mktemp("retention")
    bundles = [image_bundle(base / v, v, keys, 64) for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0")]
    root = tmp_path / "root"
    try:
        for b in bundles[:3]:
            assert satchel(root, "install", b, "--key", keys["vendor.pub"], "--keep", "2").returncode == 0
        res = satchel(root, "install", bundles[3], "--key", keys["vendor.pub"], "--keep", "2",
                      env={"SATCHEL_CRASH_AT": "during-retention"})
        assert res.returncode == -9
        app = state.Host(root).app("app")
        assert app.current() == "1.3.0"
        for version in ("1.3.0", "1.2.0"):   # current and previous are complete, blobs and all
            manifest = json.loads((root / "apps" / "app" / "releases" / version / "manifest.json").read_text())
            assert all((root / "store" / "blobs" / "sha256" / m["sha256"]).exists()
                       for m in manifest["members"] if m["path"].startswith("blobs/"))
        assert satchel(root, "install", bundles[3], "--key", keys["vendor.pub"]).returncode == 0  # no-op
        assert satchel(root, "rollback").returncode == 0 and app.current() == "1.2.0"
    finally:
        ManagedRegistry(root / "registry").stop()


def test_install_reads_the_bundle_once_from_a_pipe(tmp_path, two_versions, keys, monkeypatch):
    """A named pipe can be read only once: installing from one proves there is no second read
    (a member cannot change between being checked and being used)."""
    monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
    old, _ = two_versions
    fifo = tmp_path / "bundle.pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{old}' > '{fifo}'"])
    root = tmp_path / "root"
    try:
        res = satchel(root, "install", fifo, "--key", keys["vendor.pub"])
        assert res.returncode == 0, res.stderr
        assert state.Host(root).app("app").current() == "1.0.0"
    finally:
        writer.wait(timeout=30)
        ManagedRegistry(root / "registry").stop()


def test_blobs_the_registry_cannot_stat_are_pushed_again(tmp_path, two_versions, keys, monkeypatch):
    """A full disk can leave a blob's link file in the registry's storage empty; the registry
    then answers HTTP 500 for that blob. The next push uploads it again, which repairs it."""
    old, _ = two_versions
    monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
    root = tmp_path / "root"
    try:
        assert satchel(root, "install", old, "--key", keys["vendor.pub"]).returncode == 0
        host = ManagedRegistry(root / "registry").host
        repositories = root / "registry" / "data" / "docker" / "registry" / "v2" / "repositories"
        links = sorted(repositories.rglob("_layers/sha256/*/link"))
        urls = [f"http://{host}/v2/{link.parents[3].relative_to(repositories)}/blobs/sha256:{link.parent.name}"
                for link in links]
        for link in links:
            link.write_bytes(b"")
        assert urls and {requests.head(u).status_code for u in urls} == {500}
        res = satchel(root, "rollback", "--to", "1.0.0")   # re-applies the current release, pushing again
        assert res.returncode == 0, res.stderr
        assert {requests.head(u).status_code for u in urls} == {200}
    finally:
        ManagedRegistry(root / "registry").stop()
