"""The customer side end to end: real Docker engine, real CNCF registry, real Docker Compose v2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import tamper
from tests.hosts import BROKEN, make_bundle
from tests.infra import docker
from tests.launch import RUN


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bundles")
    out = {v: make_bundle(base / v, v, keys) for v in ("1.0.0", "1.1.0", "1.3.0", "1.4.0")}
    out["1.2.0"] = make_bundle(base / "1.2.0", "1.2.0", keys, healthcheck=BROKEN)
    return out


def manifest_of(bundle: Path) -> dict:
    return json.loads(tamper.split(bundle.read_bytes())[0].data)


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_install_upgrade_auto_restore_and_manual_rollback(host, bundles):
    res = host.install(bundles["1.0.0"])
    assert res.returncode == 0, res.stderr
    assert host.state.current() == "1.0.0" and host.served_version() == "hello 1.0.0"
    digest = manifest_of(bundles["1.0.0"])["images"][0]["digest"]
    assert all(c["Config"]["Image"].endswith("@" + digest) for c in host.containers().values())

    res = host.install(bundles["1.1.0"])
    assert res.returncode == 0, res.stderr
    digest = manifest_of(bundles["1.1.0"])["images"][0]["digest"]
    containers = host.containers()
    assert {c["Config"]["Image"].split("@")[1] for c in containers.values()} == {digest}
    assert host.served_version() == "hello 1.1.0"
    assert containers["web"]["State"]["Health"]["Status"] == "healthy"

    res = host.install(bundles["1.2.0"])
    assert res.returncode == 5, res.stderr
    assert "1.2.0 failed its health check" in res.stderr and "1.1.0 was restored" in res.stderr
    assert host.state.current() == "1.1.0" and host.served_version() == "hello 1.1.0"
    events = [(e["event"], e.get("version")) for e in host.state.history()]
    assert events[-3:] == [("failed", "1.2.0"), ("report", "1.2.0"), ("rolled-back", "1.1.0")]

    res = host.run("rollback")
    assert res.returncode == 0, res.stderr
    assert host.state.current() == "1.0.0" and host.served_version() == "hello 1.0.0"
    status = json.loads(host.run("status", "--json").stdout)
    assert status["current"] == "1.0.0" and {s["service"] for s in status["services"]} == {"web", "worker"}
    history = json.loads(host.run("history", "--json").stdout)
    assert history[-1]["event"] == "rolled-back" and history[-1]["version"] == "1.0.0"
    logs = sorted((host.root / "logs").iterdir())
    assert len(logs) == 4 and "failed: DeployFailedRestored" in logs[2].read_text()
    assert "result: rolled-back hello 1.0.0" in logs[3].read_text()


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_downgrade_refused_unless_asked_and_reinstall_is_a_quick_noop(host, bundles):
    assert host.install(bundles["1.1.0"]).returncode == 0
    start = time.monotonic()
    res = host.install(bundles["1.1.0"], "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["action"] == "already-installed"
    assert time.monotonic() - start < 5
    res = host.install(bundles["1.0.0"])
    assert res.returncode == 3 and "older than the installed 1.1.0" in res.stderr
    assert host.state.current() == "1.1.0"
    res = host.install(bundles["1.0.0"], "--allow-downgrade")
    assert res.returncode == 0, res.stderr
    assert host.served_version() == "hello 1.0.0"


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_tampered_bundle_changes_nothing(host, bundles, tmp_path):
    assert host.install(bundles["1.0.0"]).returncode == 0
    before = host.snapshot()
    entries = tamper.split(bundles["1.1.0"].read_bytes())
    data = bytearray(entries[-1].data)
    data[len(data) // 2] ^= 1
    entries[-1].data = bytes(data)
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(tamper.compress(tamper.join(entries)))
    res = host.install(bad)
    assert res.returncode == 3 and "sha256 mismatch" in res.stderr
    res = host.install(bundles["1.1.0"], "--key", "/dev/null")
    assert res.returncode == 2
    other = host.run("install", bundles["1.1.0"], "--key", str(host.key).replace("vendor", "other"))
    assert other.returncode == 3 and "untrusted" in other.stderr
    assert host.snapshot() == before


def test_second_install_waits_or_exits_4(host, bundles):
    assert host.install(bundles["1.0.0"]).returncode == 0
    with host.state.host.lock():
        start = time.monotonic()
        res = host.install(bundles["1.1.0"], "--wait", "1")
        assert res.returncode == 4 and "another satchel command" in res.stderr
        assert time.monotonic() - start < 10
    assert host.state.current() == "1.0.0"
    assert host.install(bundles["1.1.0"]).returncode == 0


@pytest.mark.parametrize("point", ["after-verify", "after-promote", "after-push", "before-commit",
                                   "before-switch", "after-switch", "after-apply"])
def test_kill_9_during_install_then_rerun_finishes(host, bundles, point):
    assert host.install(bundles["1.0.0"]).returncode == 0
    res = host.install(bundles["1.1.0"], env={"SATCHEL_CRASH_AT": point})
    assert res.returncode == -9, res.stderr
    current = host.state.current()
    assert current in ("1.0.0", "1.1.0")
    assert (host.app_dir / "releases" / current / "release.json").is_file()
    res = host.install(bundles["1.1.0"])
    assert res.returncode == 0, res.stderr
    assert host.state.current() == "1.1.0" and host.served_version() == "hello 1.1.0"
    assert host.state.journal() is None
    assert not list((host.root / "staging").iterdir())


@pytest.mark.parametrize("point", ["before-switch", "after-switch", "after-apply"])
def test_kill_9_during_rollback_then_rerun_finishes(host, bundles, point):
    assert host.install(bundles["1.0.0"]).returncode == 0
    assert host.install(bundles["1.1.0"]).returncode == 0
    res = host.run("rollback", env={"SATCHEL_CRASH_AT": point})
    assert res.returncode == -9
    assert host.state.current() in ("1.0.0", "1.1.0")
    res = host.run("rollback")
    assert res.returncode == 0, res.stderr
    assert host.state.current() == "1.0.0" and host.served_version() == "hello 1.0.0"


def test_retention_keeps_the_last_releases_and_their_blobs(host, bundles):
    for v in ("1.0.0", "1.1.0", "1.3.0", "1.4.0"):
        assert host.install(bundles[v], "--keep", "3").returncode == 0
    assert sorted(p.name for p in (host.app_dir / "releases").iterdir()) == ["1.1.0", "1.3.0", "1.4.0"]
    blobs = {p.name for p in (host.root / "store" / "blobs" / "sha256").iterdir()}
    for v in ("1.1.0", "1.3.0", "1.4.0"):
        needed = {m["sha256"] for m in manifest_of(bundles[v])["members"] if m["path"].startswith("blobs/")}
        assert needed <= blobs
    only_old = {m["sha256"] for m in manifest_of(bundles["1.0.0"])["members"]} - {
        m["sha256"] for v in ("1.1.0", "1.3.0", "1.4.0") for m in manifest_of(bundles[v])["members"]}
    assert only_old and not (only_old & blobs)
    assert host.run("rollback", "--to", "1.0.0").returncode == 2


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_rollback_to_the_current_release_reapplies_it(host, bundles):
    assert host.install(bundles["1.0.0"]).returncode == 0
    for c in host.containers().values():
        docker("rm", "-f", c["Id"])
    assert host.containers() == {}
    res = host.run("rollback", "--to", "1.0.0")
    assert res.returncode == 0 and "re-applied hello 1.0.0" in res.stdout, res.stderr
    assert host.served_version() == "hello 1.0.0"


def test_external_registry_with_basic_auth(host, bundles, auth_registry, tmp_path):
    import base64

    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    token = base64.b64encode(b"vendor:s3cret-pw").decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    res = host.install(bundles["1.0.0"], "--registry", auth_registry.host, env={"DOCKER_CONFIG": str(cfg)})
    assert res.returncode == 0, res.stderr
    web = host.containers()["web"]
    assert web["Config"]["Image"].startswith(auth_registry.host + "/acme/web@sha256:")
    assert not (host.root / "registry").exists()   # no managed registry was started


def _children(pid: int, args: bytes) -> list[int]:
    """Processes whose parent is `pid` and whose NUL-separated command line holds `args`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and args in cmdline:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_install_takes_its_compose_child_along(host, bundles, sig):
    """The run is killed while `docker compose up` works for it: Compose goes too (it never races
    the next run), SIGTERM ends the run in one line, and the next run finishes the upgrade."""
    assert host.install(bundles["1.0.0"]).returncode == 0
    run = subprocess.Popen([sys.executable, "-c", RUN, "install", bundles["1.1.0"], "--key", host.key, "--project",
                            host.project, "--timeout", "20"], env=host.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (compose := _children(run.pid, b"\0up\0-d\0")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert compose, "docker compose up never started"
    run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in compose) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in compose), "docker compose outlived the run"
    if sig == signal.SIGTERM:
        assert run.returncode == 143 and err.strip().splitlines()[-1].startswith("satchel: terminated;"), err
        assert "Traceback" not in err
    res = host.install(bundles["1.1.0"])
    assert res.returncode == 0, res.stderr
    assert host.state.current() == "1.1.0" and host.served_version() == "hello 1.1.0"
    assert not [e for e in host.state.history() if e["event"] == "failed"]
