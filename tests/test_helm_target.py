"""The Helm target with a real helm binary and a real registry; the cluster-facing calls
against recorded Kubernetes API responses (no API server can run here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from bundler.errors import BundleError
from installer.targets import kube
from installer.targets.postrender import rewrite
from tests import tamper
from tests.hosts import Host

DATA = Path(__file__).parent / "data" / "k8s"


def write_chart(root: Path, host: str, extra_image: str | None = None) -> Path:
    """Images from values, an init container, a CronJob and an image hard-coded in a template."""
    chart = root / "charts" / "shop"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\nappVersion: web-1.0\n")
    (chart / "values.yaml").write_text(
        f"image:\n  repository: {host}/acme/web\n  tag: web-1.0\ninit:\n  image: {host}/acme/multi:multi-1.0\n"
        "replicas: 1\ntier: standard\nlogLevel: info\n")
    (chart / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop-web\n  labels:\n    tier: {{ .Values.tier }}\n"
        "spec:\n  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n"
        "      initContainers:\n      - name: init\n        image: {{ .Values.init.image }}\n"
        "      containers:\n      - name: web\n        image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n"
        "        env:\n        - name: LOG_LEVEL\n          value: {{ .Values.logLevel }}\n")
    (chart / "templates" / "cronjob.yaml").write_text(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: shop-report\nspec:\n  schedule: '0 * * * *'\n"
        "  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n"
        f"          - name: report\n            image: {extra_image or host + '/acme/worker:worker-1.0'}\n")
    return chart


@pytest.fixture(scope="module")
def shop_bundle(tmp_path_factory, keys, test_images) -> Path:
    assert shutil.which("helm"), "helm is not installed (scripts/install-helm.sh)"
    d = tmp_path_factory.mktemp("shop")
    write_chart(d, test_images.registry.host)
    (d / "satchel.yaml").write_text("name: shop\nversion: 1.0.0\ntarget: helm\ncharts: [charts/shop]\n")
    from installer.cli import main

    out = d / "shop.bundle"
    assert main(["-q", "build", str(d / "satchel.yaml"), "-o", str(out), "--key", str(keys["vendor"]),
                 "--cache", str(d / "cache")]) == 0
    return out


def images_in(rendered: str) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "image" and isinstance(v, str):
                    found.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for doc in yaml.safe_load_all(rendered):
        walk(doc)
    return found


def render(host: Host, bundle: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return host.run("install", bundle, "--key", host.key, "--render-only", out, *extra)


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)  # kit: its helm, frozen post-renderer
def test_charts_are_pulled_from_the_local_registry_and_every_image_is_rewritten(host, shop_bundle, tmp_path):
    host.app_name = "shop"
    out = tmp_path / "rendered"
    res = render(host, shop_bundle, out)
    assert res.returncode == 0, res.stderr
    registry = json.loads((out / "release.json").read_text())["registry"]
    # Helm itself pulls and renders the chart from the local registry.
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    proc = subprocess.run(["helm", "pull", f"oci://{registry}/charts/shop", "--version", "0.1.0", "--plain-http",
                           "-d", str(pulled)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    entries = {e.name: e.data for e in tamper.split(shop_bundle.read_bytes())}
    manifest = json.loads(entries["manifest.json"])
    chart_manifest = json.loads(entries["blobs/sha256/" + manifest["charts"][0]["digest"][7:]])
    assert (pulled / "shop-0.1.0.tgz").read_bytes() == entries["blobs/sha256/" + chart_manifest["layers"][0]["digest"][7:]]
    with tarfile.open(pulled / "shop-0.1.0.tgz") as tar:
        assert "shop/templates/cronjob.yaml" in tar.getnames()

    rendered = (out / "helm" / "shop.yaml").read_text()
    found = images_in(rendered)
    assert len(found) == 3  # init container, container, CronJob (hard-coded)
    digests = {str(i["ref"]): i["digest"] for i in manifest["images"]}
    assert all(re.fullmatch(re.escape(registry) + r"/acme/[a-z]+@sha256:[0-9a-f]{64}", img) for img in found), found
    assert {img.split("@")[1] for img in found} == set(digests.values())
    assert host.state.current() is None and host.state.journal() is None


def test_values_layering_defaults_files_then_set(host, shop_bundle, tmp_path):
    overrides = tmp_path / "site.yaml"
    overrides.write_text("replicas: 2\ntier: gold\n")
    out = tmp_path / "rendered"
    res = render(host, shop_bundle, out, "--values", str(overrides), "--set", "replicas=3")
    assert res.returncode == 0, res.stderr
    deployment = next(d for d in yaml.safe_load_all((out / "helm" / "shop.yaml").read_text()) if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3                               # --set wins
    assert deployment["metadata"]["labels"]["tier"] == "gold"               # customer file over the default
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "LOG_LEVEL", "value": "info"}]                 # vendor default kept
    assert (out / "helm" / "values-00.yaml").read_text() == overrides.read_text()


def test_a_chart_needing_an_image_that_cannot_be_bundled_is_refused_at_build(cli, tmp_path, keys, test_images):
    write_chart(tmp_path, test_images.registry.host, extra_image=f"{test_images.registry.host}/acme/ghost:1.0")
    (tmp_path / "satchel.yaml").write_text("name: shop\nversion: 1.0.0\ncharts: [charts/shop]\n")
    res = cli("-q", "build", tmp_path / "satchel.yaml", "-o", tmp_path / "x.bundle", "--key", keys["vendor"],
              "--cache", tmp_path / "c")
    assert res.code == 2 and "acme/ghost:1.0 does not exist" in res.err
    assert not (tmp_path / "x.bundle").exists()


def test_post_renderer_refuses_images_the_bundle_lacks():
    images = {"docker.io/acme/web:1.0": "127.0.0.1:5050/acme/web@sha256:" + "a" * 64}
    out = rewrite("kind: Pod\nspec:\n  containers:\n  - image: acme/web:1.0\n", images)
    assert images["docker.io/acme/web:1.0"] in out
    with pytest.raises(BundleError, match=r"acme/other:2\.0, which the bundle does not carry"):
        rewrite("kind: Pod\nspec:\n  containers:\n  - image: acme/other:2.0\n", images)


class _RecordedAPI(BaseHTTPRequestHandler):
    """Serves recorded Kubernetes API responses; remembers the requests."""

    requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _RecordedAPI.requests.append(self.path)
        if "/log" in self.path:
            body, kind = b"2026-11-21T10:00:00Z starting web\nready\n", "text/plain"
        elif self.path.startswith("/api/v1/namespaces/shop/pods"):
            body, kind = (DATA / "pods.json").read_bytes(), "application/json"
        elif self.path.startswith("/api/v1/namespaces/shop/events"):
            body, kind = (DATA / "events.json").read_bytes(), "application/json"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorded_api(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordedAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "rec",
        "clusters": [{"name": "rec", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "contexts": [{"name": "rec", "context": {"cluster": "rec", "user": "rec", "namespace": "shop"}}],
        "users": [{"name": "rec", "user": {"token": "recorded-token"}}]}))
    _RecordedAPI.requests = []
    yield str(config)
    server.shutdown()


def query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(path).query)


def test_cluster_calls_against_recorded_responses(recorded_api):
    pods = kube.release_pods("shop", "shop", recorded_api)
    assert [(p["name"], p["phase"], p["ready"], p["restarts"]) for p in pods] == [
        ("shop-web-7d9c8b-x2x4k", "Running", True, 0), ("shop-web-7d9c8b-q8w2z", "Running", False, 4)]
    assert pods[0]["env"] == ["DB_PASSWORD=recorded-secret-99", "MODE=prod"]
    assert query(_RecordedAPI.requests[0])["labelSelector"] == ["app.kubernetes.io/instance=shop"]
    events = kube.recent_events("shop", recorded_api)
    assert events[0]["reason"] == "BackOff" and events[0]["object"] == "Pod/shop-web-7d9c8b-q8w2z"
    assert "starting web" in kube.pod_logs("shop", "shop-web-7d9c8b-x2x4k", "web", recorded_api, tail=50)
    assert query(_RecordedAPI.requests[-1])["tailLines"] == ["50"]


def test_unreachable_cluster_is_a_clear_environment_error(tmp_path):
    from bundler.errors import EnvironmentProblem

    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}], "users": [{"name": "x", "user": {}}]}))
    with pytest.raises(EnvironmentProblem, match="unreachable"):
        kube.release_pods("shop", "shop", str(config))


def test_diagnostics_of_a_helm_release_from_recorded_responses(host, shop_bundle, tmp_path, recorded_api):
    """A Helm release made current by hand (applying needs a cluster): diagnostics reads its
    pods, events and logs through the recorded API, redacts, and flags the unready pod."""
    out = tmp_path / "rendered"
    assert render(host, shop_bundle, out).returncode == 0
    info = json.loads((out / "release.json").read_text())
    info["helm"]["kubeconfig"], info["helm"]["namespace"] = recorded_api, "shop"
    (out / "release.json").write_text(json.dumps(info))
    host.app_name = "shop"
    shutil.copytree(out, host.app_dir / "releases" / "1.0.0")
    host.state.switch("1.0.0")
    host.state.record("installed", version="1.0.0", previous=None)
    archive = tmp_path / "diag.tar.zst"
    res = host.run("diagnostics", "-o", archive)
    assert res.returncode == 0, res.stderr
    from tests.test_diagnostics import findings, unpack

    files = unpack(archive)
    assert {"kubernetes/pods.json", "kubernetes/events.json",
            "kubernetes/logs/shop-web-7d9c8b-x2x4k/web.log"} <= set(files)
    assert b"recorded-secret-99" not in b"".join(files.values())
    checks = findings(files)
    assert checks["container:shop-web-7d9c8b-q8w2z"][0] == "fail"
    assert checks["container:shop-web-7d9c8b-x2x4k"][0] == "pass"
    status = json.loads(host.run("status", "--json").stdout)
    assert [s["health"] for s in status["services"]] == ["ready", "not ready"]
