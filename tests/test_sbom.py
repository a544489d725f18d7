"""SBOMs: Syft's CycloneDX JSON for each image, pinned by the signed manifest. An image built
from a Debian root file system lists its packages with their versions (libc6 as dpkg says);
every SBOM validates against the CycloneDX 1.6 schema; two builds are byte-identical; a
tampered SBOM is rejected like any member; `sbom diff` reports exactly what changed, between
bundles and between the installed release and a bundle; the SBOMs reach the store and
diagnostics; --no-sbom leaves them out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bundler import sbom
from bundler.manifest import parse_manifest
from tests import tamper
from tests.images import BUSYBOX

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def manifest_bytes(bundle: bytes) -> bytes:
    return next(e.data for e in tamper.split(bundle) if e.name == "manifest.json")


def dpkg_entry(name: str, version: str) -> str:
    return (f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
            f"Installed-Size: 10\nMaintainer: Debian <debian@example.org>\nArchitecture: amd64\n"
            f"Version: {version}\nDescription: {name}\n\n")


def debian_app(d: Path, version: str, packages: dict[str, str] | None) -> Path:
    """An image from a Debian-like root file system: the host's dpkg database (None), or one
    that lists `packages`."""
    root = d / "rootfs"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "bin").mkdir()
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    (root / "etc/os-release").write_text(OS_RELEASE)
    status = root / "var/lib/dpkg/status"
    if packages is None:
        shutil.copy("/var/lib/dpkg/status", status)
    else:
        status.write_text("".join(dpkg_entry(n, v) for n, v in packages.items()))
    (d / "satchel.yaml").write_text(f"name: deb\nversion: {version}\nimages:\n  - ref: acme/deb:{version}\n"
                                    "    source: dir:rootfs\n")
    return d / "satchel.yaml"


def build(cli, spec: Path, keys, out: Path, *extra: str) -> Path:
    res = cli("-q", "build", spec, "-o", out, "--key", keys["vendor"], "--cache", out.with_suffix(".cache"), *extra)
    assert res.code == 0, res.err
    return out


@pytest.fixture
def epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")


def test_debian_packages_are_listed_with_versions_in_valid_cyclonedx(cli, keys, tmp_path, epoch):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    bundle = build(cli, debian_app(tmp_path / "deb", "1.0.0", None), keys, tmp_path / "deb.bundle")
    res = cli("inspect", bundle, "--sbom", "--key", keys["vendor.pub"], "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert doc["signatureVerified"] and len(doc["sboms"]) == 1
    packages = {(p["name"], p["type"]): p["version"] for p in doc["sboms"][0]["packages"]}
    libc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libc6"], capture_output=True,
                          text=True, check=True).stdout
    assert packages[("libc6", "deb")] == libc
    assert packages[("busybox", "binary")]
    assert len([k for k in packages if k[1] == "deb"]) > 50
    listed = cli("inspect", bundle, "--sbom", "deb")
    assert "libc6" in listed.out and libc in listed.out and "signature not checked" in listed.out
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    _, found = sbom.from_bundle(bundle, lambda m, s: parse_manifest(m))
    assert len(found) == 1
    for data in found.values():
        assert validator.validate_str(data.decode()) is None
        assert json.loads(data)["metadata"]["component"]["name"] == "docker.io/acme/deb:1.0.0"


def test_two_builds_with_sboms_are_byte_identical(cli, keys, tmp_path, epoch):
    spec = debian_app(tmp_path / "deb", "1.0.0", {"libc6": "2.36-9", "foo": "1.0"})
    first = build(cli, spec, keys, tmp_path / "a.bundle")
    second = build(cli, spec, keys, tmp_path / "b.bundle")       # another cache: other temporary paths
    assert first.read_bytes() == second.read_bytes()
    assert parse_manifest(manifest_bytes(first.read_bytes())).sboms


def test_a_tampered_sbom_is_rejected(cli, keys, tmp_path, epoch):
    bundle = build(cli, debian_app(tmp_path / "deb", "1.0.0", {"libc6": "2.36-9"}), keys, tmp_path / "x.bundle")
    manifest = parse_manifest(manifest_bytes(bundle.read_bytes()))
    target = "blobs/sha256/" + manifest.sboms[0].digest.split(":", 1)[1]
    entries = tamper.split(bundle.read_bytes())
    for e in entries:
        if e.name == target:
            e.data = e.data.replace(b"2.36-9", b"2.99-9")
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(tamper.compress(tamper.join(entries)))
    res = cli("verify", bad, "--key", keys["vendor.pub"])
    assert res.code == 3 and target.split("/")[-1][:12] in res.err + res.out, res.err
    assert cli("inspect", bad, "--sbom", "--key", keys["vendor.pub"]).code == 3


def test_sbom_diff_reports_exactly_the_change(cli, keys, tmp_path, epoch):
    old = build(cli, debian_app(tmp_path / "1", "1.0.0", {"libc6": "2.36-9", "foo": "1.0", "baz": "3.0"}), keys,
                tmp_path / "old.bundle")
    new = build(cli, debian_app(tmp_path / "2", "1.1.0", {"libc6": "2.36-9", "foo": "1.1", "bar": "2.0"}), keys,
                tmp_path / "new.bundle")
    res = cli("sbom", "diff", old, new, "--key", keys["vendor.pub"], "--json")
    assert res.code == 0, res.err
    [image] = res.json()["images"]
    assert image["image"] == "acme/deb"
    assert [(p["name"], p["version"]) for p in image["added"]] == [("bar", "2.0")]
    assert [(p["name"], p["version"]) for p in image["removed"]] == [("baz", "3.0")]
    assert [(p["name"], p["from"], p["version"]) for p in image["changed"]] == [("foo", "1.0", "1.1")]
    text = cli("sbom", "diff", old, new, "--key", keys["vendor.pub"]).out
    assert "+ bar 2.0 (deb)" in text and "- baz 3.0 (deb)" in text and "~ foo 1.0 -> 1.1 (deb)" in text


def test_no_sbom_leaves_them_out(cli, keys, tmp_path):
    bundle = build(cli, debian_app(tmp_path / "deb", "1.0.0", {"libc6": "2.36-9"}), keys, tmp_path / "n.bundle",
                   "--no-sbom")
    assert not parse_manifest(manifest_bytes(bundle.read_bytes())).sboms
    res = cli("inspect", bundle, "--sbom")
    assert res.code == 2 and "carries no SBOM" in res.err


def test_the_installed_release_keeps_its_sboms(host, keys, tmp_path, cli, epoch):
    """Into the store with the release, into diagnostics, and diffed against a bundle."""
    old = build(cli, debian_app(tmp_path / "1", "1.0.0", {"libc6": "2.36-9", "foo": "1.0"}), keys,
                tmp_path / "old.bundle")
    new = build(cli, debian_app(tmp_path / "2", "1.1.0", {"libc6": "2.36-9", "foo": "1.1"}), keys,
                tmp_path / "new.bundle")
    host.app_name = "deb"
    assert host.install(old).returncode == 0
    digest = parse_manifest(manifest_bytes(old.read_bytes())).sboms[0].digest.split(":", 1)[1]
    assert (host.root / "store" / "blobs" / "sha256" / digest).is_file()
    res = host.run("sbom", "diff", "installed", new, "--key", host.key, "--json")
    assert res.returncode == 0, res.stderr
    [image] = json.loads(res.stdout)["images"]
    assert [(p["name"], p["from"], p["version"]) for p in image["changed"]] == [("foo", "1.0", "1.1")]
    archive = tmp_path / "diag.tar.zst"
    assert host.run("diagnostics", "-o", archive).returncode == 0
    from tests.test_diagnostics import unpack

    listed = [json.loads(v) for k, v in unpack(archive).items() if "/sbom/" in f"/{k}"]
    assert [p["name"] for p in listed[0]["packages"] if p["type"] == "deb"] == ["foo", "libc6"]


def test_the_examples_kind_of_image_lists_its_busybox(keys, tmp_path, monkeypatch):
    """examples/hello's images are Debian's static busybox: Syft finds the binary and its version."""
    from tests.hosts import make_bundle

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    bundle = make_bundle(tmp_path / "hello", "1.0.0", keys, sbom=True)
    _, found = sbom.from_bundle(bundle, lambda m, s: parse_manifest(m))
    banner = subprocess.run([str(BUSYBOX)], capture_output=True, text=True).stdout.split()
    version = banner[1].lstrip("v")                      # "BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) ..."
    [packages] = [sbom.packages(data) for data in found.values()]
    assert {"name": "busybox", "version": version, "type": "binary", "licence": ""} in packages
