"""Many applications on one host, and their whole life, with the real engine, Compose and
registry: installed, upgraded, rolled back and removed independently; shared layers stored
and pushed once; the registry and the store bounded over many upgrades; a root of the
single-application layout migrated in place (also after a kill -9); drift reported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from bundler.manifest import parse_manifest
from installer.tools import compose
from tests.hosts import Host, make_bundle
from tests.infra import docker
from tests.legacy import to_single_app_layout

PAYLOAD = 512 << 10      # each version's own layer: large enough that metadata does not count


@pytest.fixture(scope="module")
def apps(tmp_path_factory, keys) -> dict[tuple[str, str], Path]:
    base = tmp_path_factory.mktemp("apps")
    return {(name, v): make_bundle(base / f"{name}-{v}", v, keys, name=name, payload=64 << 10)
            for name in ("alpha", "beta") for v in ("1.0.0", "1.1.0")}


def install(host: Host, bundle: Path, project: str, *extra: str) -> dict:
    res = host.run("install", bundle, "--key", host.key, "--project", project, "--timeout", "20", "--json", *extra)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def ids(host: Host, project: str) -> dict[str, tuple[str, str]]:
    return {s: (c["Id"], c["State"]["StartedAt"]) for s, c in host.containers(project).items()}


def release_blobs(release: Path) -> dict[str, int]:
    return parse_manifest((release / "manifest.json").read_bytes()).all_blobs


def store_blobs(host: Host) -> dict[str, int]:
    return {f"sha256:{p.name}": p.stat().st_size for p in (host.root / "store" / "blobs" / "sha256").iterdir()}


def manifest_status(host: Host, digest: str) -> int:
    """HTTP status of acme/web@digest in the host's managed registry."""
    registry = f"127.0.0.1:{(host.root / 'registry' / 'port').read_text()}"
    return requests.head(f"http://{registry}/v2/acme/web/manifests/{digest}", timeout=10, headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"}).status_code


def test_two_applications_live_side_by_side(host, apps):
    alpha, beta = f"{host.project}-alpha", f"{host.project}-beta"
    assert install(host, apps["alpha", "1.0.0"], alpha)["pushed_blobs"] == 3       # config, busybox, own layer
    assert install(host, apps["beta", "1.0.0"], beta)["pushed_blobs"] == 2         # busybox is there already
    a_dir, b_dir = host.root / "apps" / "alpha", host.root / "apps" / "beta"
    both = release_blobs(a_dir / "releases" / "1.0.0") | release_blobs(b_dir / "releases" / "1.0.0")
    assert store_blobs(host) == both                                                # shared layers stored once
    assert host.served_version(alpha) == "alpha 1.0.0" and host.served_version(beta) == "beta 1.0.0"

    table = json.loads(host.run("status", "--json").stdout)
    assert [(a["app"], a["current"], a["health"]) for a in table["apps"]] == [
        ("alpha", "1.0.0", "healthy"), ("beta", "1.0.0", "healthy")]
    ambiguous = host.run("rollback")
    assert ambiguous.returncode == 2 and "this host runs 2 applications (alpha, beta)" in ambiguous.stderr

    # Each one moves on its own; the other keeps running, not even restarted.
    b_before = ids(host, beta)
    assert install(host, apps["alpha", "1.1.0"], alpha)["previous"] == "1.0.0"
    assert host.served_version(alpha) == "alpha 1.1.0"
    assert host.run("rollback", "--app", "alpha").returncode == 0
    assert host.served_version(alpha) == "alpha 1.0.0"
    assert ids(host, beta) == b_before and host.served_version(beta) == "beta 1.0.0"
    a_before = ids(host, alpha)
    assert install(host, apps["beta", "1.1.0"], beta)["previous"] == "1.0.0"
    assert host.served_version(beta) == "beta 1.1.0" and ids(host, alpha) == a_before
    detail = json.loads(host.run("status", "--json", env={"SATCHEL_APP": "beta"}).stdout)
    assert detail["app"] == "beta" and detail["current"] == "1.1.0" and detail["releases"] == ["1.1.0", "1.0.0"]

    # Removal asks first; then takes alpha away and nothing of beta.
    before = host.snapshot()
    refused = host.run("remove", "alpha")
    assert refused.returncode == 2 and "--yes" in refused.stderr and host.snapshot() == before
    alpha_images = {d for v in ("1.0.0", "1.1.0") for d in release_blobs(a_dir / "releases" / v)} - set(
        release_blobs(b_dir / "releases" / "1.0.0")) - set(release_blobs(b_dir / "releases" / "1.1.0"))
    alpha_manifest = parse_manifest((a_dir / "releases" / "1.0.0" / "manifest.json").read_bytes()).images[0].digest
    b_before = ids(host, beta)
    res = host.run("remove", "alpha", "--yes")
    assert res.returncode == 0, res.stderr
    assert host.containers(alpha) == {} and alpha not in docker("network", "ls", "--format", "{{.Name}}")
    assert ids(host, beta) == b_before and host.served_version(beta) == "beta 1.1.0"
    kept = release_blobs(b_dir / "releases" / "1.0.0") | release_blobs(b_dir / "releases" / "1.1.0")
    assert store_blobs(host) == kept and not alpha_images & set(store_blobs(host))
    assert manifest_status(host, alpha_manifest) == 404                         # the registry's copy too
    for release in ("1.0.0", "1.1.0"):
        digest = parse_manifest((b_dir / "releases" / release / "manifest.json").read_bytes()).images[0].digest
        assert manifest_status(host, digest) == 200
    events = json.loads(host.run("history", "--host", "--json").stdout)
    assert events[-1]["event"] == "removed" and events[-1]["app"] == "alpha"
    assert json.loads(host.run("status", "--json").stdout)["app"] == "beta"     # the only one left


def test_registry_and_store_stay_bounded_over_ten_upgrades(host, keys, tmp_path):
    versions = [f"1.{n}.0" for n in range(11)]
    bundles = {v: make_bundle(tmp_path / v, v, keys, payload=PAYLOAD) for v in versions}
    gone = []
    for v in versions:
        assert host.install(bundles[v]).returncode == 0
        gone.append(parse_manifest((host.state.releases / v / "manifest.json").read_bytes()).images[0].digest)
    kept = sorted(p.name for p in host.state.releases.iterdir())
    assert kept == ["1.10.0", "1.8.0", "1.9.0"]
    needed = {}
    for v in kept:
        needed |= release_blobs(host.state.releases / v)
    unique = sum(needed.values())
    store = sum(store_blobs(host).values())
    registry = sum(p.stat().st_size for p in (host.root / "registry" / "data").rglob("*") if p.is_file())
    print(f"ten upgrades: kept releases need {unique} bytes; store {store}, registry {registry}")
    assert store <= 1.2 * unique and registry <= 1.2 * unique, (unique, store, registry)
    assert all(manifest_status(host, d) == 404 for d in gone[:-3])
    registry_host = f"127.0.0.1:{(host.root / 'registry' / 'port').read_text()}"
    for n, digest in enumerate(gone[-3:]):                            # kept releases still pull, every blob
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                        f"docker://{registry_host}/acme/web@{digest}", f"oci:{tmp_path / 'pulled'}:{n}"], check=True)
    # A release collected long ago installs again: its layers are pushed again, not assumed present.
    assert host.install(bundles["1.0.0"], "--allow-downgrade").returncode == 0
    assert host.served_version() == "hello 1.0.0"


@pytest.fixture(scope="module")
def settings_bundles(tmp_path_factory, keys) -> dict[str, Path]:
    """hello with a setting, so that the release names its settings file (moved by a migration)."""
    base = tmp_path_factory.mktemp("migrate")
    extra = "settings:\n  - {name: GREETING, default: hello}\n"
    env = "    environment: [\"GREETING=${GREETING}\"]\n"
    return {v: make_bundle(base / v, v, keys, spec_extra=extra, web_extra=env) for v in ("1.0.0", "1.1.0")}


def test_a_single_application_root_is_migrated_in_place_even_after_kill_9(host, settings_bundles):
    assert host.install(settings_bundles["1.0.0"]).returncode == 0
    to_single_app_layout(host.root, "hello")
    # Its containers, as the single-application layout left them: made from compose files at the top.
    release = host.root / "releases" / "1.0.0"
    info = json.loads((release / "release.json").read_text())
    settings = dict(line.split("=", 1) for line in Path(info["env_file"]).read_text().splitlines())
    proc = compose.run(host.project, [release / f for f in info["compose"]],
                       ["up", "-d", "--force-recreate", "--wait"], release, 120, settings)
    assert proc.returncode == 0, proc.stderr
    labels = host.containers()["web"]["Config"]["Labels"]
    assert labels["com.docker.compose.project.config_files"].startswith(str(release))
    history = (host.root / "history").read_text()
    running = ids(host, host.project)

    killed = host.run("status", env={"SATCHEL_CRASH_AT": "during-migration"})
    assert killed.returncode == -9 and (host.root / "migrating").exists()
    res = host.run("status", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["current"] == "1.0.0" and json.loads(res.stdout)["drift"] == []
    assert not [p.name for p in host.root.iterdir() if p.name in (
        "releases", "current", "journal", "config", "secrets", "reports", "migrating")]
    assert host.app_dir.joinpath("history").read_text().startswith(history)
    last = json.loads(host.run("history", "--host", "--json").stdout)[-1]
    assert last["event"] == "migrated" and last["app"] == "hello"
    moved = json.loads((host.state.releases / "1.0.0" / "release.json").read_text())["env_file"]
    assert moved.startswith(str(host.app_dir / "secrets")) and Path(moved).is_file()
    assert ids(host, host.project) == running and host.served_version() == "hello 1.0.0"   # untouched

    assert host.install(settings_bundles["1.1.0"]).returncode == 0     # its containers are still its own
    assert host.served_version() == "hello 1.1.0"
    assert host.run("rollback").returncode == 0 and host.served_version() == "hello 1.0.0"


def test_drift_is_reported(host, settings_bundles, engine_image, tmp_path):
    assert host.install(settings_bundles["1.0.0"]).returncode == 0
    clean = json.loads(host.run("status", "--json").stdout)
    assert clean["drift"] == [] and clean["health"] == "healthy"
    web = host.containers()["web"]
    docker("rm", "-f", web["Id"])                       # replaced by hand with another image
    docker("run", "-d", "--name", web["Name"].lstrip("/"), *[
        arg for key in ("com.docker.compose.project", "com.docker.compose.service", "com.docker.compose.config-hash",
                        "com.docker.compose.project.config_files")
        for arg in ("--label", f"{key}={web['Config']['Labels'][key]}")], engine_image)
    info = json.loads(host.run("status", "--json").stdout)
    assert [(d["service"], d["kind"]) for d in info["drift"]] == [("web", "image")]
    assert info["health"] == "drift" and info["apps"][0]["drift"] == 1
    assert "drift: web" in host.run("status").stdout
    archive = tmp_path / "diag.tar.zst"
    assert host.run("diagnostics", "-o", archive).returncode == 0
    from tests.test_diagnostics import unpack

    findings = json.loads(unpack(archive)["analysis.json"])["findings"]
    assert any(f["check"] == "drift" and f["status"] == "fail" and "web" in f["message"] for f in findings)
