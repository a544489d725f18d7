"""satchel diagnostics with a real Docker engine and a running example release: sections,
redaction proven on every byte, findings, broken environments, encryption, HTML, upload."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import zstandard

from installer.diagnostics.analyze import analyze
from tests.browser import render
from tests.conftest import HOSTILE_COUNTS
from tests.hosts import Host, make_bundle
from tests.infra import docker

DB_PASSWORD = "planted-db-pw-7781"
API_TOKEN = "planted-api-token-4242"
LICENSE = "LIC-PLANTED-5519"          # marked secret by the vendor; its name does not look secret
URL_PASSWORD = "planted-url-pw-991"
SECRETS = [DB_PASSWORD, API_TOKEN, LICENSE, URL_PASSWORD]

WEB_EXTRA = (
    "    environment:\n"
    f"      DB_PASSWORD: {DB_PASSWORD}\n"
    f"      API_TOKEN: {API_TOKEN}\n"
    f"      LICENSE: {LICENSE}\n"
    f"      DATABASE_URL: postgres://app:{URL_PASSWORD}@db:5432/app\n"
    "      MODE: production\n")
# The app prints its secrets to its log, as real apps sometimes do.
WEB_COMMAND = ('["/bin/busybox", "sh", "-c", "echo connecting with $$DB_PASSWORD token $$API_TOKEN licence '
               '$$LICENSE url $$DATABASE_URL; touch /www/healthy; exec /bin/busybox httpd -f -p 8080 -h /www"]')
# The probe says what it found: its output reaches the report.
FILE_HEALTH = ('["CMD", "/bin/busybox", "sh", "-c", "/bin/busybox test -f /www/healthy && echo probe ok || '
               '{ echo probe found no /www/healthy; exit 1; }"]')


@pytest.fixture(scope="module")
def secret_bundles(tmp_path_factory, keys) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("diag-bundles")
    common = {"web_extra": WEB_EXTRA, "web_command": WEB_COMMAND, "spec_extra": "secrets: [LICENSE]\n"}
    return {"1.0.0": make_bundle(base / "1", "1.0.0", keys, healthcheck=FILE_HEALTH, **common),
            "1.2.0": make_bundle(base / "2", "1.2.0", keys, healthcheck='["CMD", "/bin/busybox", "false"]', **common)}


@pytest.fixture
def installed(request, tmp_path, keys, secret_bundles):
    """A host running 1.0.0; parametrized indirectly with "kit", through the kit."""
    box = request.getfixturevalue("kit_box") if getattr(request, "param", "venv") == "kit" else None
    h = Host(tmp_path / "root", keys, box)
    res = h.install(secret_bundles["1.0.0"])
    assert res.returncode == 0, res.stderr
    yield h
    h.cleanup()


def unpack(path: Path) -> dict[str, bytes]:
    with zstandard.ZstdDecompressor().stream_reader(path.open("rb")) as z, tarfile.open(fileobj=z, mode="r|") as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar if m.isfile()}


def findings(files: dict[str, bytes]) -> dict[str, tuple[str, str]]:
    return {f["check"]: (f["status"], f["message"]) for f in json.loads(files["analysis.json"])["findings"]}


@pytest.mark.parametrize("installed", ["venv", "kit"], indirect=True)
def test_archive_has_every_section_and_no_secret_anywhere(installed, tmp_path):
    out = tmp_path / "diag.tar.zst"
    res = installed.run("diagnostics", "-o", out, "--json")
    assert res.returncode == 0, res.stderr
    raw = out.read_bytes()
    files = unpack(out)
    names = set(files)
    for needed in ("satchel/state.json", "satchel/history.jsonl", "satchel/releases/1.0.0/manifest.json",
                   "satchel/releases/1.0.0/compose/compose.yaml", "satchel/store-verification.json",
                   "host/facts.json", "host/os-release", "docker/version.json", "docker/info.json",
                   "docker/containers.json", "registry/report.json", "registry/container.log",
                   "analysis.json", "summary.txt",
                   "facts.json", "redaction-report.json", "checksums.json"):
        assert needed in names, needed
    assert any(n.startswith("docker/logs/") for n in names) and any(n.startswith("docker/containers/") for n in names)
    assert any(n.startswith("satchel/logs/") for n in names)
    web_log = next(v for k, v in files.items() if k.startswith("docker/logs/") and "web" in k)
    assert b"connecting with ***HIDDEN***" in web_log  # the log line is there, its secret is not
    everything = b"".join(files.values())
    for secret in SECRETS:
        assert secret.encode() not in everything, secret
        assert secret.encode() not in raw
    report = json.loads(files["redaction-report.json"])["hidden"]
    kinds = {r["kind"] for r in report}
    assert {"known-secret-value"} <= kinds
    assert all(set(r) == {"kind", "file", "count"} for r in report)
    checks = findings(files)
    assert all(v[0] == "pass" for k, v in checks.items() if k.startswith("container:")), checks
    assert checks["registry"][0] == "pass" and checks["store"][0] == "pass"
    assert json.loads(files["registry/report.json"])["container"]["state"]["Running"] is True


def test_findings_for_unhealthy_container_and_rolled_back_install(installed, tmp_path, secret_bundles, artifacts):
    res = installed.install(secret_bundles["1.2.0"])
    assert res.returncode == 5
    web = installed.containers()["web"]
    docker("exec", web["Id"], "/bin/busybox", "rm", "/www/healthy")
    deadline = time.monotonic() + 60
    while installed.containers()["web"]["State"]["Health"]["Status"] != "unhealthy":
        assert time.monotonic() < deadline, "container never became unhealthy"
        time.sleep(1)
    out = tmp_path / "diag.tar.zst"
    assert installed.run("diagnostics", "-o", out).returncode == 0
    checks = findings(unpack(out))
    web_check = next(v for k, v in checks.items() if k.startswith("container:") and "web" in k)
    assert web_check[0] == "fail" and "unhealthy" in web_check[1]
    assert checks["last-install"][0] == "warn" and "rolled-back 1.0.0" in checks["last-install"][1]
    assert "1.2.0" in checks["last-install"][1]
    # The vendor's page: the rollback report, the failure highlighted, the log tails.
    page = tmp_path / "page.html"
    assert installed.run("diagnostics", "open", out, "--html", page).returncode == 0
    html = page.read_text()
    assert "<h2>Rollback reports</h2>" in html and "rollback report: 1.2.0" in html
    assert '<tr class="bad">' in html and html.index("1.2.0") < html.rindex("installed")
    # As the vendor sees it in a browser 1280 px wide: nothing runs off sideways.
    shown = render(page, artifacts / "diagnostics-report-1280.png", 1280)
    assert shown.scroll_width <= 1280, f"the page is {shown.scroll_width} px wide"
    assert "rollback report: 1.2.0" in shown.text and "last log lines of web:" in shown.text
    assert "health probe: probe found no /www/healthy" in shown.text
    assert "satchel-test" in shown.text.split("\nLogs\n", 1)[1] and "connecting with ***HIDDEN***" in shown.text


def test_broken_environments_still_produce_an_archive(installed, tmp_path):
    installed.cleanup()  # containers gone and the managed registry stopped
    res = installed.run("diagnostics", "-o", tmp_path / "a.tar.zst", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert res.returncode == 0, res.stderr
    files = unpack(tmp_path / "a.tar.zst")
    checks = findings(files)
    assert checks["docker"][0] == "fail" and checks["registry"][0] == "fail"
    errors = json.loads(files["analysis.json"])["errors"]
    docker_error = next(e["error"] for e in errors if e["collector"] == "docker")
    assert docker_error == ("the Docker engine is not reachable at unix:///nonexistent.sock; start dockerd or set "
                            "DOCKER_HOST")                    # no class name, no repr
    assert "not collected" in files["summary.txt"].decode()
    # Corrupted state files.
    (installed.app_dir / "history").write_text("{not json\n")
    (installed.app_dir / "releases" / "1.0.0" / "release.json").write_text("garbage")
    res = installed.run("diagnostics", "-o", tmp_path / "b.tar.zst")
    assert res.returncode == 0, res.stderr
    assert findings(unpack(tmp_path / "b.tar.zst"))["state"][0] == "fail"


def test_empty_host(tmp_path, keys):
    h = Host(tmp_path / "empty", keys)
    res = h.run("diagnostics", "-o", tmp_path / "e.tar.zst")
    assert res.returncode == 0, res.stderr
    assert findings(unpack(tmp_path / "e.tar.zst"))["release"][0] == "warn"


def test_encryption_round_trip_wrong_identity_and_html(installed, tmp_path):
    for name in ("vendor", "intruder"):
        assert installed.run("diagnostics", "keygen", "--out", tmp_path / name).returncode == 0
    out = tmp_path / "enc.age"
    res = installed.run("diagnostics", "-o", out, "--encrypt-to", tmp_path / "vendor.age.pub")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes().startswith(b"age-encryption.org/v1")
    assert all(s.encode() not in out.read_bytes() for s in SECRETS)
    res = installed.run("diagnostics", "open", out, "--identity", tmp_path / "intruder.age")
    assert res.returncode == 2 and "encrypted to another key" in res.stderr and len(res.stderr.splitlines()) == 1
    res = installed.run("diagnostics", "open", out)
    assert res.returncode == 2 and "--identity" in res.stderr
    html = tmp_path / "report.html"
    res = installed.run("diagnostics", "open", out, "--identity", tmp_path / "vendor.age", "--html", html)
    assert res.returncode == 0, res.stderr
    assert "current release: 1.0.0" in res.stdout and "findings:" in res.stdout
    page = html.read_text()
    for text in ("<h2>Findings</h2>", "<h2>Release timeline (newest first)</h2>", "<h2>Containers</h2>",
                 "installed", "1.0.0", "healthy", "PASS", "<h2>Logs</h2>", 'class="log"', "health probe: probe ok",
                 "signed by", "by Satchel 0."):
        assert text in page, text
    assert all(s not in page for s in SECRETS)


def test_damaged_archive_is_refused(installed, tmp_path):
    out = tmp_path / "d.tar.zst"
    assert installed.run("diagnostics", "-o", out).returncode == 0
    files = unpack(out)
    files["summary.txt"] = b"everything is fine\n"
    buf = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(buf, closefd=False) as z, tarfile.open(fileobj=z, mode="w|") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"satchel-diagnostics/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "forged.tar.zst").write_bytes(buf.getvalue())
    res = installed.run("diagnostics", "open", tmp_path / "forged.tar.zst")
    assert res.returncode == 3 and "summary.txt is damaged" in res.stderr


class _Uploads(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []
    fail_first = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Uploads.fail_first > 0:
            _Uploads.fail_first -= 1
            self.send_response(503)
        else:
            _Uploads.received.append(body)
            self.send_response(200)
        self.end_headers()


def test_upload_retries_then_succeeds_and_failure_keeps_the_archive(installed, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Uploads)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/upload/diag?sig=abc"
    try:
        _Uploads.fail_first, _Uploads.received = 1, []
        out = tmp_path / "u.tar.zst"
        res = installed.run("diagnostics", "-o", out, "--upload", url, "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["uploaded"] is True and _Uploads.received == [out.read_bytes()]
    finally:
        server.shutdown()
    res = installed.run("diagnostics", "-o", tmp_path / "v.tar.zst", "--upload", "http://127.0.0.1:9/x")
    assert res.returncode == 4 and "the archive is kept" in res.stderr
    assert (tmp_path / "v.tar.zst").exists()


def test_analyzer_rules_for_clock_disk_and_missing_images():
    now = datetime.now(UTC)
    facts = {"satchel": {"current": "1.0.0", "history": [],
                         "releases": {"1.0.0": {"created": (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}}},
             "host": {"clock_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "disks": {"satchel_root": {"total": 100 << 30, "free": 1 << 30, "used": 99 << 30}}},
             "registry": {"host": "r", "reachable": True, "missing": ["acme/web@sha256:" + "a" * 64]},
             "containers": [{"name": "w", "status": "running", "health": "", "restart_count": 3}]}
    checks = {f.check: f for f in analyze(facts, [])}
    assert checks["clock"].status == "fail" and "earlier than" in checks["clock"].message
    assert checks["disk:satchel_root"].status == "fail"
    assert checks["registry"].status == "fail" and "missing" in checks["registry"].message
    assert checks["container:w"].status == "warn"


def _hostile_archive(path: Path, facts: dict, analysis: dict, summary: str) -> None:
    """What anyone holding the vendor's public age key can send: well-formed, hostile inside."""
    from installer.diagnostics import archive

    files = {"facts.json": json.dumps(facts).encode(), "analysis.json": json.dumps(analysis).encode(),
             "summary.txt": summary.encode(), "redaction-report.json": b'{"hidden": [{"count": "<b>"}]}'}
    with path.open("wb") as fh:
        archive.write(fh, files)


def test_a_received_archive_cannot_script_the_vendors_viewer(tmp_path, cli):
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    facts = {"host": {"hostname": evil}, "containers": [{"name": evil, "restart_count": evil, "image": evil}],
             "satchel": {"current": evil, "history": [{"time": evil, "event": evil}, "not a dict"]}}
    analysis = {"findings": [{"status": "evil", "check": evil, "message": evil}, {"status": "fail"}, 7],
                "errors": [{"collector": evil, "error": evil}]}
    path = tmp_path / "evil.tar.zst"
    _hostile_archive(path, facts, analysis, "line\x1b]0;owned\x07\x1b[2J\n")
    page = tmp_path / "page.html"
    res = cli("diagnostics", "open", path, "--html", page)
    assert res.code == 0, res.err
    html = page.read_text()
    assert "<img" not in html and "&lt;script&gt;" in html
    # One script runs: the page's own log filter, allowed by its hash and nothing else.
    from installer.diagnostics.report import FILTER_SCRIPT, SCRIPT_HASH

    assert html.count("<script") == 1 and f"<script>{FILTER_SCRIPT}</script>" in html
    assert f"default-src 'none'; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'" in html
    assert "\x1b" not in res.out and "\x07" not in res.out
    HOSTILE_COUNTS["diagnostics viewer"] += 1


@pytest.mark.parametrize("shape", ["one huge member", "many large members", "a PAX header of a GiB"])
def test_a_bomb_archive_is_refused_within_bounded_memory(tmp_path, shape):
    """A few MiB that unpack to a GiB or more: refused, and the viewer's memory stays bounded."""
    import subprocess
    import sys

    path = tmp_path / "bomb.tar.zst"
    with path.open("wb") as raw, zstandard.ZstdCompressor(level=1).stream_writer(raw) as z:
        if shape == "a PAX header of a GiB":
            info = tarfile.TarInfo("satchel-diagnostics/pax")
            info.type, info.size = tarfile.XHDTYPE, 1 << 30
            z.write(info.tobuf(format=tarfile.USTAR_FORMAT))
            _copy(_Zeros(1 << 30), z)
        else:
            with tarfile.open(fileobj=z, mode="w|") as tar:
                for n, size in enumerate([1 << 30] if shape == "one huge member" else [30 << 20] * 40):
                    info = tarfile.TarInfo(f"satchel-diagnostics/f{n}.txt")
                    info.size = size
                    tar.addfile(info, _Zeros(size))
    assert path.stat().st_size < 8 << 20
    proc = subprocess.run([sys.executable, "-c", "import resource, sys; from installer.cli import main; "
                           f"code = main(['diagnostics', 'open', '{path}']); "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3 and "diagnostics archive" in proc.stderr, proc.stderr
    assert int(proc.stdout.split()[-1]) < 400 << 10, proc.stdout        # KiB: well under 400 MiB
    HOSTILE_COUNTS["diagnostics viewer"] += 1


def _copy(src: io.RawIOBase, dst) -> None:
    while chunk := src.read(1 << 20):
        dst.write(chunk)


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


class _Redirect(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        self.send_response(307)
        self.send_header("Location", "http://127.0.0.2:9/steal")
        self.end_headers()


@pytest.mark.parametrize("url,extra,message", [
    ("http://uploads.example.invalid/x?sig=SECRETSIG", ["--encrypt-to", "age1x"], "is plain http: use https"),
    ("https://uploads.example.invalid/x?sig=SECRETSIG", [], "needs --encrypt-to"),
])
def test_upload_off_host_needs_https_and_encryption(tmp_path, cli, url, extra, message):
    res = cli("--root", tmp_path / "root", "diagnostics", "-o", tmp_path / "d.tar.zst", "--upload", url, *extra)
    assert res.code == 2 and message in res.err and "SECRETSIG" not in res.err, res.err
    assert not (tmp_path / "d.tar.zst").exists()
    HOSTILE_COUNTS["upload"] += 1


def test_upload_follows_no_redirect_and_prints_no_signature(tmp_path, cli):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://user:pw@127.0.0.1:{server.server_address[1]}/up?X-Amz-Signature=SECRETSIG"
    try:
        res = cli("--root", tmp_path / "root", "diagnostics", "-o", tmp_path / "d.tar.zst", "--upload", url)
    finally:
        server.shutdown()
    assert res.code == 4 and "redirect, not followed" in res.err, res.err
    assert "SECRETSIG" not in res.err and "pw@" not in res.err and (tmp_path / "d.tar.zst").exists()
    HOSTILE_COUNTS["upload"] += 1
