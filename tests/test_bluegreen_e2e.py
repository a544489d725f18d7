"""Blue-green switches against the real engine, Compose and HAProxy, with a client sending 50
requests a second through the front proxy for the whole run: an upgrade, an upgrade whose new
release never gets healthy, and a rollback lose no request, and no request is answered by the
failing release. The web service needs seconds to start, so a recreate would be caught (the
control test shows the same client does catch it). Kill -9 at each step of a blue-green switch,
and of the proxy itself, then a re-run: exactly one colour serves, the right one."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import SUMMARY
from tests.hosts import BROKEN, Host, make_bundle
from tests.images import BUSYBOX
from tests.infra import docker, free_port

SLOW = '["/bin/busybox", "sh", "-c", "/bin/busybox sleep 4; exec /bin/busybox httpd -f -p 8080 -h /www"]'
BLUE_GREEN = ("switch:\n  strategy: blue-green\n  drain: 2s\n  routes: {web: http}\n"
              "  singletons: {db: keep, worker: stop-first}\n")
DB = ("  db:\n    image: acme/db:1\n    command: [\"/bin/busybox\", \"sh\", \"-c\", "
      "\"echo up >> /data/starts; exec /bin/busybox sleep 3600\"]\n    volumes: [db:/data]\n"
      "volumes:\n  db:\n")


class Client:
    """GET / on a new connection every 20 ms (50 requests a second) until stopped: what answered."""

    def __init__(self, port: int) -> None:
        self.port, self.answers, self.failures = port, Counter[str](), list[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                conn.close()
                if resp.status == 200:
                    self.answers[body] += 1
                else:
                    self.failures.append(f"HTTP {resp.status}")
            except OSError as exc:
                self.failures.append(repr(exc))
            next_at += 0.02
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total(self) -> int:
        return sum(self.answers.values()) + len(self.failures)


def web_bundle(d: Path, version: str, keys, port: int, spec_extra: str = BLUE_GREEN, web_command: str = SLOW,
               **kw) -> Path:
    """The web service takes 4 s to answer; db, the same image in every version, keeps a volume."""
    db = d.parent / "db-rootfs"
    if not db.exists():
        (db / "bin").mkdir(parents=True)
        shutil.copy(BUSYBOX, db / "bin" / "busybox")
    return make_bundle(d, version, keys, web_command=web_command, web_extra=f'    ports: ["127.0.0.1:{port}:8080"]\n',
                       spec_extra=spec_extra, compose_extra=DB, start_period="20s",
                       images_extra=f"  - ref: acme/db:1\n    source: dir:{db}\n", **kw)


@pytest.fixture(scope="module")
def app(tmp_path_factory, keys) -> dict[str, object]:
    """1.0.0 and 1.1.0 healthy, 1.2.0 never healthy; all blue-green on one fixed port; and two
    recreate releases on another, for the control."""
    base = tmp_path_factory.mktemp("bluegreen")
    port, plain = free_port(), free_port()
    out: dict[str, object] = {"port": port, "plain": plain}
    for version in ("1.0.0", "1.1.0"):
        out[version] = web_bundle(base / version, version, keys, port)
        out[f"recreate-{version}"] = web_bundle(base / f"r{version}", version, keys, plain, spec_extra="")
    out["1.2.0"] = web_bundle(base / "1.2.0", "1.2.0", keys, port, healthcheck=BROKEN)
    return out


def serving(host: Host) -> dict[str, str]:
    """Colour -> the version its web container serves, for every colour that has a container."""
    out = {}
    for colour in ("blue", "green"):
        project = f"{host.project}-{colour}"
        if docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").strip():
            out[colour] = host.served_version(project)
    return out


def through_proxy(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/")
    return conn.getresponse().read().decode().strip()


def test_upgrade_failed_upgrade_and_rollback_lose_no_request(host, app, tmp_path):
    port = app["port"]
    assert host.install(app["1.0.0"]).returncode == 0
    assert through_proxy(port) == "hello 1.0.0"
    with Client(port) as client:
        time.sleep(1)
        res = host.install(app["1.1.0"])
        assert res.returncode == 0, res.stderr
        failed = host.install(app["1.2.0"])
        assert failed.returncode == 5, failed.stderr
        res = host.run("rollback")
        assert res.returncode == 0, res.stderr
        time.sleep(1)
    assert client.failures == [], f"{len(client.failures)} of {client.total} failed: {client.failures[:5]}"
    assert client.answers["hello 1.2.0"] == 0
    assert client.answers["hello 1.0.0"] > 0 and client.answers["hello 1.1.0"] > 0
    assert serving(host) == {next(iter(serving(host))): "hello 1.0.0"}
    assert host.state.current() == "1.0.0"
    # The keep singleton ran once, across every switch; the stop-first one runs once.
    db = host.containers()["db"]
    assert docker("exec", db["Id"], "/bin/busybox", "cat", "/data/starts").split() == ["up"]
    workers = docker("ps", "-q", "--filter", "label=com.docker.compose.service=worker",
                     "--filter", f"label=com.docker.compose.project={host.project}-{next(iter(serving(host)))}")
    assert len(workers.split()) == 1
    SUMMARY.append(f"blue-green upgrade, failing upgrade, rollback: {client.total} requests at 50/s, "
                   f"{len(client.failures)} failed; answered: {dict(sorted(client.answers.items()))}")
    # What the operator sees knows about the colours.
    report = next(host.state.reports.iterdir()).read_text()
    assert "ran in" in report and "no request reached it" in report, report
    live = next(iter(serving(host)))
    assert f"blue-green: {live} colour live" in host.run("status").stdout
    assert host.state.history()[-1]["colour"] == live
    archive = tmp_path / "diag.tar.zst"
    assert host.run("diagnostics", "-o", archive).returncode == 0
    from tests.test_diagnostics import unpack

    files = unpack(archive)
    assert any(name.endswith("proxy/haproxy.cfg") and f"live colour is {live}".encode() in text
               for name, text in files.items()), sorted(files)


def test_the_same_client_catches_a_recreate(host, app):
    """The control: the same upgrade with the default strategy loses requests while web restarts."""
    port = app["plain"]
    assert host.install(app["recreate-1.0.0"]).returncode == 0
    with Client(port) as client:
        time.sleep(1)
        assert host.install(app["recreate-1.1.0"]).returncode == 0
        time.sleep(1)
    assert len(client.failures) > 50, client.total      # web needs 4 s to answer again
    SUMMARY.append(f"the same client against a recreate upgrade: {len(client.failures)} of {client.total} failed")


@pytest.fixture(scope="module")
def quick(tmp_path_factory, keys) -> dict[str, object]:
    """The same application with a web service that answers at once: for the crash cases."""
    base = tmp_path_factory.mktemp("bluegreen-quick")
    port = free_port()
    out: dict[str, object] = {"port": port}
    quick_web = '["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]'
    for version in ("1.0.0", "1.1.0"):
        out[version] = web_bundle(base / version, version, keys, port, web_command=quick_web)
    out["recreate-0.9.0"] = web_bundle(base / "0.9.0", "0.9.0", keys, port, web_command=quick_web, spec_extra="")
    return out


def proxy_pid(host: Host, pidfile: Path) -> Path:
    pidfile.write_text(docker("inspect", "-f", "{{.State.Pid}}", f"{host.project}-satchel-proxy").strip())
    return pidfile


STEPS = ["before-switch", "colour-recorded", "before-cut-over", "after-cut-over", "after-apply"]


def test_every_step_of_a_blue_green_switch_is_a_crash_case():
    source = (Path(__file__).parents[1] / "installer" / "targets" / "bluegreen.py").read_text()
    assert set(re.findall(r'faults\.point\("([a-z-]+)"\)', source)) <= set(STEPS)


@pytest.mark.parametrize("crash", [*STEPS, "proxy@before-cut-over", "proxy@after-cut-over"])
def test_killed_at_each_step_a_rerun_leaves_one_colour_serving(host, quick, crash, tmp_path):
    """kill -9 of Satchel at each step of the switch to 1.1.0 (or of the proxy's master process,
    proxy@STEP), then the same install again: 1.1.0 serves from exactly one colour, through the
    proxy, and nothing else runs."""
    port = quick["port"]
    assert host.install(quick["1.0.0"]).returncode == 0
    if crash.startswith("proxy@"):
        env = {"SATCHEL_KILL_AT": f"{crash.split('@')[1]}={proxy_pid(host, tmp_path / 'proxy.pid')}"}
    else:
        env = {"SATCHEL_CRASH_AT": crash}
    first = host.install(quick["1.1.0"], env=env)
    assert first.returncode in ((0,) if crash.startswith("proxy@") else (-9,)), first.stderr
    again = host.install(quick["1.1.0"])
    assert again.returncode == 0, again.stderr
    live = host.run("status", "--json")
    assert live.returncode == 0, live.stderr
    switch = json.loads(live.stdout)["switch"]
    assert switch["proxy"]["state"] == "running"
    assert serving(host) == {switch["live"]: "hello 1.1.0"}
    assert through_proxy(port) == "hello 1.1.0"
    assert host.state.current() == "1.1.0" and host.state.journal() is None


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_remove_takes_both_colours_the_singletons_and_the_proxy(host, quick):
    """Through the kit too: the front proxy's image comes from the kit's own rootfs."""
    assert host.install(quick["1.0.0"]).returncode == 0
    assert host.install(quick["1.1.0"]).returncode == 0
    res = host.run("remove", host.app_name, "--purge", "--yes")
    assert res.returncode == 0, res.stderr
    left = docker("ps", "-aq", "--filter", f"name={host.project}").split()
    assert left == [] and serving(host) == {}
    assert docker("network", "ls", "-q", "--filter", f"name={host.project}").split() == []
    assert f"{host.project}_db" not in docker("volume", "ls", "-q").split()


def test_a_recreate_release_becomes_blue_green_and_back(host, quick):
    """0.9.0 (recreate) -> 1.0.0 (blue-green): its containers go, the database and its volume
    stay; rollback to 0.9.0: the colours and the proxy go, and it runs as before."""
    port = quick["port"]
    assert host.install(quick["recreate-0.9.0"]).returncode == 0
    db = host.containers()["db"]["Id"]
    res = host.install(quick["1.0.0"])
    assert res.returncode == 0, res.stderr
    assert through_proxy(port) == "hello 1.0.0" and len(serving(host)) == 1
    assert set(host.containers()) == {"db"} and host.containers()["db"]["Id"] == db     # kept running
    workers = docker("ps", "-q", "--filter", "label=com.docker.compose.service=worker").split()
    assert len([w for w in workers if host.project in docker("inspect", "-f", "{{.Name}}", w)]) == 1
    res = host.run("rollback")
    assert res.returncode == 0, res.stderr
    assert serving(host) == {} and set(host.containers()) == {"web", "worker", "db"}
    assert through_proxy(port) == "hello 0.9.0"
    assert docker("ps", "-aq", "--filter", f"name={host.project}-satchel-proxy").strip() == ""
