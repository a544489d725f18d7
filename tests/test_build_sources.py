"""satchel build against a real registry (plain and basic auth), a real Docker engine, OCI layouts,
docker save archives and directories; platform filtering, dedup, discovery, reproducibility."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from bundler.build import BuildOptions, build
from bundler.spec import load_spec
from signing.keys import load_signing_key
from tests import tamper
from tests.images import BUSYBOX
from tests.infra import docker


def build_ok(cli, spec: Path, keys, out: Path | None = None) -> dict:
    out = out or spec.parent / "out.bundle"
    res = cli("-q", "build", spec, "-o", out, "--key", keys["vendor"], "--cache", spec.parent / "cache")
    assert res.code == 0, res.err
    res = cli("verify", out, "--key", keys["vendor.pub"])
    assert res.code == 0, res.err
    info = cli("inspect", out, "--json")
    assert info.code == 0, info.err
    return info.json()


def registry_digest(host: str, repo: str, tag: str) -> str:
    accept = ("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
    resp = requests.head(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": accept}, timeout=10)
    resp.raise_for_status()
    return resp.headers["Docker-Content-Digest"]


def members(bundle: Path) -> list[str]:
    return [e.name for e in tamper.split(bundle.read_bytes())]


def test_registry_images_keep_their_digests_and_share_layers(cli, write_spec, keys, test_images):
    host = test_images.registry.host
    spec = write_spec({"name": "hello", "version": "1.0.0",
                       "images": [f"{host}/acme/web:web-1.0", {"ref": f"{host}/acme/worker:worker-1.0"}]})
    info = build_ok(cli, spec, keys)
    by_ref = {i["ref"]: i for i in info["images"]}
    assert by_ref[f"{host}/acme/web:web-1.0"]["digest"] == registry_digest(host, "acme/web", "web-1.0")
    assert by_ref[f"{host}/acme/worker:worker-1.0"]["digest"] == registry_digest(host, "acme/worker", "worker-1.0")
    assert all(i["platforms"] == ["linux/amd64"] for i in info["images"])
    # The busybox layer is shared: stored once, reported as shared.
    assert info["shared_blobs"] == 1 and info["shared_bytes"] > 500_000
    assert info["deduped_size"] < info["total_size"]
    assert info["dedupedSize"] == info["deduped_size"]          # the camelCase key, deprecated, one more release
    names = members(spec.parent / "out.bundle")
    assert len(names) == len(set(names))


def test_platform_filtering_of_a_multi_arch_index(cli, write_spec, keys, test_images):
    host = test_images.registry.host
    ref = f"{host}/acme/multi:multi-1.0"
    full = build_ok(cli, write_spec({"name": "m", "version": "1.0.0", "images": [ref]}), keys)["images"][0]
    assert sorted(full["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert full["digest"] == registry_digest(host, "acme/multi", "multi-1.0")

    spec = write_spec({"name": "m", "version": "1.0.0", "platforms": ["linux/arm64"], "images": [ref]},
                      "arm.yaml")
    out = spec.parent / "arm.bundle"
    arm = build_ok(cli, spec, keys, out)["images"][0]
    assert arm["platforms"] == ["linux/arm64"]
    assert arm["digest"] != full["digest"] and arm["blobs"] == full["blobs"] - 3
    entries = {e.name: e.data for e in tamper.split(out.read_bytes())}
    index = json.loads(entries["blobs/sha256/" + arm["digest"][7:]])
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]
    manifest = json.loads(entries["manifest.json"])
    assert manifest["images"][0]["sourceDigest"] == full["digest"]

    bad = write_spec({"name": "m", "version": "1.0.0", "platforms": ["linux/s390x"], "images": [ref]}, "b.yaml")
    res = cli("-q", "build", bad, "-o", spec.parent / "x.bundle", "--key", keys["vendor"], "--cache",
              spec.parent / "cache")
    assert res.code == 2 and "no manifest for linux/s390x" in res.err and "linux/arm64" in res.err


def test_basic_auth_registry(cli, write_spec, keys, test_images, auth_registry, tmp_path, monkeypatch):
    auth_registry.push_layout(test_images.layout, "web-1.0", "private/web")
    spec = write_spec({"name": "p", "version": "1.0.0", "images": [f"{auth_registry.host}/private/web:web-1.0"]})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    res = cli("-q", "build", spec, "-o", tmp_path / "p.bundle", "--key", keys["vendor"], "--cache", tmp_path / "c")
    assert res.code == 4 and "requires a login" in res.err, res.err
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    token = base64.b64encode(b"vendor:s3cret-pw").decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    info = build_ok(cli, spec, keys)
    assert info["images"][0]["digest"] == registry_digest(test_images.registry.host, "acme/web", "web-1.0")


def test_credentials_from_a_docker_credential_helper(cli, write_spec, keys, test_images, auth_registry, tmp_path,
                                                      monkeypatch):
    """config.json names a helper for the host (credHelpers), as `docker login` with a
    credential store leaves it: Satchel asks the helper, like Docker does."""
    auth_registry.push_layout(test_images.layout, "web-1.0", "private/web")
    spec = write_spec({"name": "p", "version": "1.0.0", "images": [f"{auth_registry.host}/private/web:web-1.0"]})
    bin_dir, cfg = tmp_path / "bin", tmp_path / "docker-config"
    bin_dir.mkdir()
    cfg.mkdir()
    helper = bin_dir / "docker-credential-satcheltest"
    helper.write_text('#!/bin/sh\nread host\nprintf \'{"ServerURL":"%s","Username":"vendor","Secret":"s3cret-pw"}\' '
                      '"$host"\n')
    helper.chmod(0o755)
    (cfg / "config.json").write_text(json.dumps({"credHelpers": {auth_registry.host: "satcheltest"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert build_ok(cli, spec, keys)["images"][0]["digest"] == registry_digest(test_images.registry.host, "acme/web",
                                                                              "web-1.0")


def test_missing_image_and_unreachable_registry(cli, write_spec, keys, test_images, tmp_path):
    host = test_images.registry.host
    spec = write_spec({"name": "x", "version": "1.0.0", "images": [f"{host}/acme/nope:1.0"]})
    res = cli("-q", "build", spec, "-o", tmp_path / "x.bundle", "--key", keys["vendor"], "--cache", tmp_path / "c")
    assert res.code == 2 and "does not exist" in res.err
    spec = write_spec({"name": "x", "version": "1.0.0", "images": ["127.0.0.1:9/acme/web:1.0"]}, "down.yaml")
    res = cli("-q", "build", spec, "-o", tmp_path / "x.bundle", "--key", keys["vendor"], "--cache", tmp_path / "c")
    assert res.code == 4 and "connection refused" in res.err
    assert not (tmp_path / "x.bundle").exists()


def test_docker_engine_source(cli, write_spec, keys, engine_image):
    spec = write_spec({"name": "e", "version": "1.0.0", "images": [{"ref": engine_image, "source": "docker"}]})
    info = build_ok(cli, spec, keys)
    image = info["images"][0]
    assert image["platforms"] == ["linux/amd64"]
    layers = json.loads(docker("image", "inspect", engine_image))[0]["RootFS"]["Layers"]
    entries = {e.name: e.data for e in tamper.split((spec.parent / "out.bundle").read_bytes())}
    manifest = json.loads(entries["blobs/sha256/" + image["digest"][7:]])
    assert [layer["digest"] for layer in manifest["layers"]] == layers


def test_docker_save_archives_legacy_and_oci(cli, write_spec, keys, engine_image, test_images, tmp_path):
    saved = tmp_path / "saved.tar"
    docker("save", "-o", str(saved), engine_image)
    oci_tar = tmp_path / "oci.tar"
    with tarfile.open(oci_tar, "w") as tar:
        tar.add(test_images.layout, arcname=".", filter=lambda i: i)
    spec = write_spec({"name": "a", "version": "1.0.0", "images": [
        {"ref": engine_image, "source": f"archive:{saved}"},
        {"ref": "acme/worker:worker-1.0", "source": f"archive:{oci_tar}"}]})
    info = build_ok(cli, spec, keys)
    by_ref = {i["ref"]: i for i in info["images"]}
    assert by_ref["docker.io/acme/worker:worker-1.0"]["digest"] == registry_digest(
        test_images.registry.host, "acme/worker", "worker-1.0")
    assert by_ref[f"docker.io/{engine_image}"]["platforms"] == ["linux/amd64"]


def test_oci_layout_source_picks_by_tag(cli, write_spec, keys, test_images):
    spec = write_spec({"name": "o", "version": "1.0.0",
                       "images": [{"ref": "acme/web:web-1.1", "source": f"oci:{test_images.layout}"}]})
    info = build_ok(cli, spec, keys)
    assert info["images"][0]["digest"] == registry_digest(test_images.registry.host, "acme/web", "web-1.1")
    bad = write_spec({"name": "o", "version": "1.0.0",
                      "images": [{"ref": "acme/web:nope", "source": f"oci:{test_images.layout}"}]}, "bad.yaml")
    res = cli("-q", "build", bad, "-o", bad.parent / "b.bundle", "--key", keys["vendor"], "--cache", bad.parent / "c")
    assert res.code == 2 and "has no image named" in res.err and "web-1.0" in res.err


def test_directory_source_is_runnable_by_docker(cli, write_spec, keys, tmp_path, registry):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    spec = write_spec({"name": "d", "version": "1.0.0", "images": [
        {"ref": f"{registry.host}/acme/dir:1.0", "source": "dir:rootfs", "cmd": ["/bin/busybox", "echo", "hi"],
         "env": {"GREETING": "hello"}}]})
    build_ok(cli, spec, keys)
    # Push the bundle's layout with skopeo and run it in the real engine.
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(fileobj=io.BytesIO(tamper.decompress((tmp_path / "out.bundle").read_bytes()))) as tar:
        tar.extractall(layout, filter="data")
    target = f"{registry.host}/acme/dir:1.0"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{target}",
                    f"docker://{target}"], check=True, capture_output=True)
    assert docker("run", "--rm", target).strip() == "hi"
    docker("rmi", "-f", target)


def test_compose_discovery(cli, write_spec, keys, test_images, tmp_path):
    host = test_images.registry.host
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {host}/acme/web:web-1.0\n"
        f"  worker:\n    image: ${{WORKER_IMAGE:-{host}/acme/worker:worker-1.0}}\n")
    spec = write_spec({"name": "c", "version": "1.0.0", "compose": ["compose.yaml"]})
    info = build_ok(cli, spec, keys)
    assert sorted(i["ref"] for i in info["images"]) == [f"{host}/acme/web:web-1.0",
                                                        f"{host}/acme/worker:worker-1.0"]
    assert info["compose"][0]["path"] == "compose.yaml"

    (tmp_path / "build.yaml").write_text("services:\n  api:\n    build: ./api\n")
    spec = write_spec({"name": "c", "version": "1.0.0", "compose": ["build.yaml"]}, "s2.yaml")
    res = cli("-q", "build", spec, "-o", tmp_path / "x.bundle", "--key", keys["vendor"])
    assert res.code == 2 and "service api has only build:" in res.err
    (tmp_path / "var.yaml").write_text("services:\n  api:\n    image: acme/api:${TAG}\n")
    spec = write_spec({"name": "c", "version": "1.0.0", "compose": ["var.yaml"]}, "s3.yaml")
    res = cli("-q", "build", spec, "-o", tmp_path / "x.bundle", "--key", keys["vendor"])
    assert res.code == 2 and "without a default" in res.err


def _chart(root: Path, host: str) -> Path:
    chart = root / "charts" / "hello"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\nappVersion: web-1.0\n")
    (chart / "values.yaml").write_text(f"image:\n  repository: {host}/acme/web\n")
    (chart / "templates" / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: web\n        image: \"{{ .Values.image.repository }}:{{ .Chart.AppVersion }}\"\n"
        f"      - name: sidecar\n        image: {host}/acme/worker:worker-1.0\n")
    return chart


def test_chart_discovery_from_values_without_helm(cli, write_spec, keys, test_images, tmp_path, monkeypatch):
    host = test_images.registry.host
    _chart(tmp_path, host)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("SATCHEL_HELM", raising=False)
    assert shutil.which("helm") is None
    info = build_ok(cli, write_spec({"name": "h", "version": "1.0.0", "charts": ["charts/hello"]}), keys)
    assert [i["ref"] for i in info["images"]] == [f"{host}/acme/web:web-1.0"]
    assert info["charts"][0]["name"] == "hello" and info["charts"][0]["images"] == [f"{host}/acme/web:web-1.0"]
    entries = {e.name: e.data for e in tamper.split((tmp_path / "out.bundle").read_bytes())}
    chart_manifest = json.loads(entries["blobs/sha256/" + info["charts"][0]["digest"][7:]])
    assert chart_manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert chart_manifest["layers"][0]["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    index = json.loads(entries["index.json"])
    assert "charts/hello:0.1.0" in [m["annotations"]["org.opencontainers.image.ref.name"]
                                    for m in index["manifests"]]


def test_reproducible_across_caches_and_thread_counts(tmp_path, keys, test_images, monkeypatch):
    host = test_images.registry.host
    (tmp_path / "compose.yaml").write_text(f"services:\n  web:\n    image: {host}/acme/web:web-1.0\n")
    (tmp_path / "satchel.yaml").write_text(
        "name: r\nversion: 1.0.0\ncompose: [compose.yaml]\n"
        f"images:\n  - {host}/acme/multi:multi-1.0\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    spec = load_spec(tmp_path / "satchel.yaml")
    key = [load_signing_key(keys["vendor"])]
    build(spec, tmp_path / "a.bundle", key, BuildOptions(cache=tmp_path / "c1", threads=1))
    build(spec, tmp_path / "b.bundle", key, BuildOptions(cache=tmp_path / "c2", threads=2))
    assert (tmp_path / "a.bundle").read_bytes() == (tmp_path / "b.bundle").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225601")
    build(spec, tmp_path / "c.bundle", key, BuildOptions(cache=tmp_path / "c1"))
    assert (tmp_path / "a.bundle").read_bytes() != (tmp_path / "c.bundle").read_bytes()


def test_inspect_human_output(cli, write_spec, keys, test_images):
    host = test_images.registry.host
    spec = write_spec({"name": "hello", "version": "2.0.0",
                       "images": [f"{host}/acme/web:web-1.0", f"{host}/acme/worker:worker-1.0"]})
    build_ok(cli, spec, keys)
    res = cli("inspect", spec.parent / "out.bundle")
    assert res.code == 0
    keyid = json.loads(cli("keygen", "--out", spec.parent / "tmpk", "--json").out)["keyid"]
    assert keyid not in res.out
    for text in ("hello 2.0.0", "signed by", f"{host}/acme/web:web-1.0", "linux/amd64", "1 shared blob(s)",
                 "after dedup", "compressed"):
        assert text in res.out, res.out


@pytest.mark.parametrize("doc,message", [
    ({"name": "Hello", "version": "1.0.0"}, "name 'Hello'"),
    ({"name": "h", "version": "1.0"}, "not a semantic version"),
    ({"name": "h", "version": "1.0.0", "imagez": []}, "unknown field(s) imagez"),
    ({"name": "h", "version": "1.0.0", "images": [{"ref": "a:1", "source": "ftp"}]}, "unknown source"),
    ({"name": "h", "version": "1.0.0", "images": [{"ref": "a:1", "cmd": ["x"]}]}, "only apply to dir:"),
    ({"name": "h", "version": "1.0.0", "files": ["../etc/passwd"]}, "relative path inside"),
    ({"name": "h", "version": "1.0.0", "files": ["missing.txt"]}, "does not exist"),
    ({"name": "h", "version": "1.0.0", "settings": [{"name": "COMPOSE_FILE"}]}, "setting name COMPOSE_FILE is reserved"),
    ({"name": "h"}, "version: required"),
    ({"name": "h", "version": "1.0.0", "imagez": []}, "imagez (did you mean images?)"),
    ({"name": "h", "version": "1.0.0", "settings": [{"name": "DOCKER_HOST"}]}, "setting name DOCKER_HOST is reserved"),
    ({"name": "h", "version": "1.0.0", "data": [{"volume": "db"}]}, "data: and hooks: are for Docker Compose"),
    ({"name": "h", "version": "1.0.0", "hooks": {"before_switch": {}}}, "(did you mean before-switch?)"),
    ({"name": "h", "version": "1.0.0", "health": {"watch": "forever"}}, "'forever' is not a duration"),
    ({"name": "h", "version": "1.0.0", "health": {"failure-threshold": 0}}, "failure-threshold: expected a count"),
    ({"name": "h", "version": "1.0.0", "compose": [], "data": [{"volume": "db", "quiesce": "command"}]},
     "service and command go with quiesce: command"),
])
def test_bad_specs_exit_2_with_one_line(cli, write_spec, keys, doc, message):
    spec = write_spec(doc)
    res = cli("-q", "build", spec, "-o", spec.parent / "x.bundle", "--key", keys["vendor"],
              "--cache", spec.parent / "c")
    assert res.code == 2 and message in res.err and len(res.err.strip().splitlines()) == 1, res.err


def test_yaml_errors_name_file_line_and_column(cli, tmp_path, keys):
    (tmp_path / "satchel.yaml").write_text("name: a\nversion 1.0.0\n  images: [\n")
    res = cli("build", tmp_path / "satchel.yaml", "-o", tmp_path / "x.bundle", "--key", keys["vendor"])
    assert res.code == 2 and f"{tmp_path / 'satchel.yaml'}:3:9: not valid YAML" in res.err, res.err


def test_a_bad_key_file_is_described_not_the_library_error(cli, tmp_path, write_spec):
    (tmp_path / "bad.key").write_text("garbage\n")
    spec = write_spec({"name": "h", "version": "1.0.0"})
    res = cli("build", spec, "-o", tmp_path / "x.bundle", "--key", tmp_path / "bad.key")
    assert res.code == 2 and "not PEM at all" in res.err and "http" not in res.err, res.err


def test_duplicate_yaml_keys_are_refused(cli, tmp_path, keys):
    (tmp_path / "satchel.yaml").write_text("name: a\nname: b\nversion: 1.0.0\n")
    res = cli("build", tmp_path / "satchel.yaml", "-o", tmp_path / "x.bundle", "--key", keys["vendor"])
    assert res.code == 2 and "duplicate key 'name'" in res.err


def test_chart_discovery_renders_with_helm(cli, write_spec, keys, test_images, tmp_path):
    """With helm on PATH, rendering finds images the values do not mention (a hard-coded sidecar)."""
    assert shutil.which("helm"), "helm is not installed (scripts/install-helm.sh)"
    host = test_images.registry.host
    _chart(tmp_path, host)
    subprocess.run(["helm", "package", str(tmp_path / "charts" / "hello"), "-d", str(tmp_path / "charts")],
                   check=True, capture_output=True)
    for chart in ("charts/hello", "charts/hello-0.1.0.tgz"):
        info = build_ok(cli, write_spec({"name": "h", "version": "1.0.0", "charts": [chart]}), keys)
        expected = [f"{host}/acme/web:web-1.0", f"{host}/acme/worker:worker-1.0"]
        assert sorted(i["ref"] for i in info["images"]) == expected, chart
        assert info["charts"][0]["images"] == expected


def test_https_registry_with_custom_ca_and_bearer_token_auth(cli, write_spec, keys, test_images, tmp_path,
                                                            monkeypatch):
    """A TLS registry (certificate from a CA given in the spec) behind a real token service."""
    from tests.infra import Registry
    from tests.tokenauth import TokenServer, self_signed

    tokens = TokenServer(tmp_path, "vendor", "tok-pw", service="test-registry", issuer="test-issuer")
    self_signed(tmp_path / "tls", "registry", ip="127.0.0.1")
    auth = (f"auth:\n  token:\n    realm: {tokens.realm}\n    service: test-registry\n"
            f"    issuer: test-issuer\n    rootcertbundle: {tokens.ca_file}\n")
    reg = Registry(tmp_path / "tls-registry", extra_config=auth,
                   tls=(tmp_path / "tls.pem", tmp_path / "tls.key"))
    try:
        reg.user, reg.password = "vendor", "tok-pw"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "vendor:tok-pw",
                        f"oci:{test_images.layout}:web-1.0", f"docker://{reg.host}/secure/web:web-1.0"],
                       check=True, capture_output=True)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "vendor:tok-pw",
                        f"oci:{test_images.layout}:worker-1.0", f"docker://{reg.host}/secure/worker:worker-1.0"],
                       check=True, capture_output=True)
        cfg = tmp_path / "docker-config"
        cfg.mkdir()
        (cfg / "config.json").write_text(json.dumps({"auths": {reg.host: {"username": "vendor", "password": "tok-pw"}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
        untrusted = write_spec({"name": "t", "version": "1.0.0", "images": [f"{reg.host}/secure/web:web-1.0"]},
                               "untrusted.yaml")
        res = cli("-q", "build", untrusted, "-o", tmp_path / "u.bundle", "--key", keys["vendor"],
                  "--cache", tmp_path / "c")
        assert res.code == 4 and "certificate" in res.err and "not trusted" in res.err, res.err
        (tmp_path / "ca.pem").write_bytes((tmp_path / "tls.pem").read_bytes())
        spec = write_spec({"name": "t", "version": "1.0.0",
                           "registries": {reg.host: {"ca": "ca.pem"}},
                           "images": [f"{reg.host}/secure/web:web-1.0", f"{reg.host}/secure/worker:worker-1.0"]})
        tokens.scopes.clear()
        info = build_ok(cli, spec, keys)
        assert {i["digest"] for i in info["images"]} == {
            registry_digest(test_images.registry.host, "acme/web", "web-1.0"),
            registry_digest(test_images.registry.host, "acme/worker", "worker-1.0")}
        # One token per repository scope, not one token reused for everything.
        assert set(tokens.scopes) == {"repository:secure/web:pull", "repository:secure/worker:pull"}
    finally:
        reg.stop()
        tokens.stop()


def test_an_empty_bundle_is_built_with_a_warning_and_inspect_shows_the_description(cli, write_spec, keys, tmp_path):
    spec = write_spec({"name": "h", "version": "1.0.0", "description": "nothing yet"})
    res = cli("-q", "build", spec, "-o", tmp_path / "e.bundle", "--key", keys["vendor"], "--cache", tmp_path / "c")
    assert res.code == 0 and "satchel: warning: h 1.0.0 names no image" in res.err, res.err
    assert "nothing yet" in cli("inspect", tmp_path / "e.bundle").out


def test_the_committed_json_schema_is_current(cli):
    """docs/satchel.schema.json is what `satchel schema` prints (regenerate it with that command)."""
    committed = (Path(__file__).resolve().parents[1] / "docs" / "satchel.schema.json").read_text()
    assert cli("schema").out == committed


def test_spec_errors_name_the_place_and_the_likely_field(cli, tmp_path, keys):
    (tmp_path / "satchel.yaml").write_text("name: a\nversion: 1.0.0\nimages:\n  - ref: acme/web:1\n    sorce: docker\n")
    res = cli("build", tmp_path / "satchel.yaml", "-o", tmp_path / "x.bundle", "--key", keys["vendor"])
    assert res.code == 2 and res.err.strip() == (f"satchel: error: {tmp_path / 'satchel.yaml'}:5:5: images[0]: unknown "
                                                  "field(s) sorce (did you mean source?) (see docs/SPEC.md)"), res.err


@pytest.mark.parametrize("extra,message", [
    ({"data": [{"volume": "dbdata"}]}, "data: volume dbdata is not a named volume of the compose files (they "
                                       "declare: appdata)"),
    ({"hooks": {"before-switch": {"service": "wbe", "command": ["x"]}}},
     "hooks.before-switch: service wbe is not in the compose files (they have: web)"),
])
def test_data_and_hooks_name_what_the_compose_files_declare(cli, write_spec, keys, extra, message):
    spec = write_spec({"name": "h", "version": "1.0.0", "compose": ["compose.yaml"], **extra})
    (spec.parent / "compose.yaml").write_text("services:\n  web: {image: acme/web:1}\nvolumes:\n  appdata:\n")
    res = cli("-q", "build", spec, "-o", spec.parent / "x.bundle", "--key", keys["vendor"], "--cache", spec.parent / "c")
    assert res.code == 2 and message in res.err and len(res.err.strip().splitlines()) == 1, res.err
