"""Preflight against the real engine: each planted problem is refused by `install` with exit 4
and one line naming what was wanted, what was found and the fix, with the state root and the
running containers unchanged, and is reported by `preflight --json`; a warn requirement prints
and the install goes on; the checks of a ten-service bundle take under 2 s."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import pytest

from tests.hosts import Host, make_bundle
from tests.infra import docker, free_port


def cgroup_other() -> str:
    return "1" if docker("info", "--format", "{{.CgroupVersion}}").strip() == "2" else "2"


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Something else holds the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


@contextmanager
def foreign_registry(host: Host) -> Iterator[None]:
    """An HTTP server that is not Satchel's registry on the registry port (this root's registry,
    which held it, is stopped first)."""
    from installer.tools.registry import ManagedRegistry

    ManagedRegistry(host.root / "registry").stop()
    server = http.server.HTTPServer(("127.0.0.1", int(host.env["SATCHEL_REGISTRY_PORT"])),
                                    http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# name -> (what satchel.yaml says, what the bundle does otherwise, what to plant, what the refusal names)
PROBLEMS: dict[str, tuple[str, dict[str, str], Callable[[Host, int], AbstractContextManager[None]], str]] = {
    "port": ("", {}, lambda h, p: listening(p), "port 127.0.0.1:{other}/tcp: wanted free for service web"),
    "memory": ("requirements: {memory: 64T}\n", {}, lambda h, p: nullcontext(), "memory: wanted at least 64.0 TiB"),
    "disk": ("requirements: {disk-state: 64T}\n", {}, lambda h, p: nullcontext(), "disk-state: wanted at least"),
    "docker": ('requirements: {docker: "999.0"}\n', {}, lambda h, p: nullcontext(), "docker: wanted at least 999.0"),
    "compose": ('requirements: {compose: "99.0"}\n', {}, lambda h, p: nullcontext(), "compose: wanted at least 99"),
    "cgroup": ("requirements: {cgroup: OTHER}\n", {}, lambda h, p: nullcontext(), "cgroup: wanted"),
    "kernel": ('requirements: {kernel: "99.0"}\n', {}, lambda h, p: nullcontext(), "kernel: wanted at least 99.0"),
    "cpus": ("requirements: {cpus: 999}\n", {}, lambda h, p: nullcontext(), "cpus: wanted at least 999"),
    "sysctl": ("requirements: {sysctl: {kernel.pid_max: 99999999}}\n", {}, lambda h, p: nullcontext(),
               "sysctl:kernel.pid_max: wanted at least 99999999"),
    "selinux": ("requirements: {selinux: enforcing}\n", {}, lambda h, p: nullcontext(), "selinux: wanted enforcing"),
    "architecture": ("", {"platform": "linux/s390x"}, lambda h, p: nullcontext(), "architecture of docker.io/acme/web:1.1.0"),
    "registry": ("", {}, lambda h, p: foreign_registry(h),
                 "registry port {registry}: wanted free or this root's registry, found something Satchel did not start"),
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys) -> dict[str, object]:
    base = tmp_path_factory.mktemp("preflight")
    port, other = free_port(), free_port()
    ports = f'    ports: ["127.0.0.1:{port}:8080"]\n'
    out: dict[str, object] = {"port": port, "other": other,
                              "1.0.0": make_bundle(base / "1.0.0", "1.0.0", keys, web_extra=ports)}
    for name, (spec, kw, _, _) in PROBLEMS.items():
        web = ports if name != "port" else f'    ports: ["127.0.0.1:{port}:8080", "127.0.0.1:{other}:8081"]\n'
        out[name] = make_bundle(base / name, "1.1.0", keys, web_extra=web,
                                spec_extra=spec.replace("OTHER", cgroup_other()), **kw)
    out["warn"] = make_bundle(base / "warn", "1.1.0", keys, web_extra=ports,
                              spec_extra="requirements: {memory: {want: 64T, level: warn}}\n")
    return out


def test_each_planted_problem_is_refused_before_anything_changes(host, bundles):
    """1.0.0 runs (its port is this application's own); each 1.1.0 meets one problem."""
    assert host.install(bundles["1.0.0"]).returncode == 0
    for name, (_, _, plant, named) in PROBLEMS.items():
        named = named.format(other=bundles["other"], registry=host.env["SATCHEL_REGISTRY_PORT"])
        before = host.snapshot()
        with plant(host, bundles["other"]):
            res = host.install(bundles[name])
            report = host.run("preflight", bundles[name], "--key", host.key, "--project", host.project, "--json")
        assert res.returncode == 4, (name, res.stderr)
        assert "error: preflight failed (" in res.stderr and named in res.stderr, (name, res.stderr)
        failed = [line for line in res.stderr.splitlines() if "preflight: FAIL " in line]
        assert len(failed) == 1 and "; " in failed[0], (name, failed)       # the fix follows
        assert host.snapshot() == before, name
        assert report.returncode == 4, (name, report.stderr)
        doc = json.loads(report.stdout)
        assert not doc["ok"] and [c["check"] for c in doc["checks"] if not c["ok"] and c["level"] == "strict"] \
            == [named.split(": wanted")[0]], (name, doc)
    # With nothing planted, the port the running release publishes is its own: no refusal.
    ok = host.run("preflight", bundles["1.0.0"], "--key", host.key, "--project", host.project, "--json")
    assert ok.returncode == 0, ok.stdout
    assert any("held by this application" in c["found"] for c in json.loads(ok.stdout)["checks"])


def test_a_warn_requirement_prints_and_the_install_goes_on(host, bundles):
    res = host.install(bundles["warn"])
    assert res.returncode == 0, res.stderr
    assert "WARN memory: wanted at least 64.0 TiB" in res.stderr
    log = "".join(p.read_text() for p in (host.root / "logs").rglob("*") if p.is_file())
    assert "warning: preflight: WARN memory" in log and "preflight: ok port" in log


def test_the_checks_of_a_ten_service_bundle_take_under_two_seconds(tmp_path, keys, monkeypatch):
    """Verification included: the whole `satchel preflight`, in-process."""
    from installer.preflight.bundle import check_bundle
    from installer.state import Host as StateHost
    from signing.keys import load_verify_key

    services = "".join(f"  s{i}:\n    image: acme/web:1.0.0\n    ports: [\"127.0.0.1:{free_port()}:80\"]\n"
                       for i in range(10))
    bundle = make_bundle(tmp_path / "ten", "1.0.0", keys, compose_extra=services, spec_extra=(
        'requirements: {cpus: 1, memory: 64M, disk-state: 1M, disk-docker: 1M, docker: "19.0", compose: "2.0", '
        'kernel: "4.0", sysctl: {kernel.pid_max: 1000}}\n'))
    monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
    t0 = time.perf_counter()
    results = check_bundle(StateHost(tmp_path / "root"), bundle, [load_verify_key(keys["vendor.pub"])], None)
    took = time.perf_counter() - t0
    assert len([r for r in results if r.check.startswith("port ")]) == 10
    assert all(r.ok for r in results if r.level == "strict"), [r.line() for r in results if not r.ok]
    assert took < 2, took


def test_a_bundle_that_exceeds_the_site_policy_is_shown_and_refused(host, keys, tmp_path):
    """web mounts / and shares the host's pid namespace: inspect says so; a policy forbidding
    host paths and namespaces refuses it (exit 4, root unchanged); allowed once the policy is cleared."""
    bundle = make_bundle(tmp_path / "grants", "1.0.0", keys,
                         web_extra='    pid: host\n    volumes: ["/:/host:ro"]\n')
    shown = host.run("inspect", bundle)
    assert "grants      web: host-namespace pid  (over the host)" in shown.stdout
    assert "grants      web: host-path /  (over the host)" in shown.stdout
    assert host.run("policy", "set", "--forbid", "host-path", "--forbid", "host-namespace",
                    "--allow-path", "/srv/data").returncode == 0
    before = host.snapshot()
    res = host.install(bundle)
    assert res.returncode == 4, res.stderr
    assert "FAIL grant web: host-path /: wanted allowed by the site policy, found forbidden" in res.stderr
    assert "FAIL grant web: host-namespace pid" in res.stderr
    assert host.snapshot() == before and host.state.current() is None
    report = json.loads(host.run("preflight", bundle, "--key", host.key, "--json").stdout)
    assert sorted(c["check"] for c in report["checks"] if not c["ok"]) == [
        "grant web: host-namespace pid", "grant web: host-path /"]
    assert host.run("policy", "clear").returncode == 0
    assert host.install(bundle).returncode == 0
