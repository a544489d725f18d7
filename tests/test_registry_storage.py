"""Zero-copy load into the managed registry: after an install the registry's blob files are the
store's files (the same inodes), every image pulls by digest with the real engine, and keeps
pulling after a registry restart, the registry's garbage collection and the retention of an
older release; a blob damaged in the store is not taken for good (the engine's pull refuses it
and `satchel store verify` names it)."""

from __future__ import annotations

import os
import subprocess

from installer import releases
from installer.tools.registry import ManagedRegistry
from tests.hosts import make_bundle
from tests.infra import docker


def registry_blob(host, digest: str):
    hex_ = digest.split(":", 1)[1]
    return host.root / "registry/data/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def store_blob(host, digest: str):
    return host.root / "store/blobs/sha256" / digest.split(":", 1)[1]


def pull(host, version: str, tmp_path) -> list[str]:
    """Every image of the release by digest from the managed registry: `docker pull`, and
    `skopeo copy` into an empty directory, which fetches every blob again and checks each
    against its digest. Returns what failed."""
    port, failed = host.env["SATCHEL_REGISTRY_PORT"], []
    for image in releases.load(host.state, version).manifest().images:
        ref = f"127.0.0.1:{port}/{image.ref.split('/', 1)[1].rsplit(':', 1)[0]}@{image.digest}"
        dest = tmp_path / f"pulled-{image.digest[7:19]}-{len(list(tmp_path.iterdir()))}"
        for cmd in (["docker", "pull", "-q", ref],
                    ["skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}"]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                failed.append(f"{cmd[0]}: {proc.stderr.strip()}")
    return failed


def test_zero_copy_load_survives_restart_gc_and_retention(host, keys, tmp_path):
    bundles = {v: make_bundle(tmp_path / v, v, keys, payload=2 << 20) for v in ("1.0.0", "1.1.0", "1.2.0")}
    assert host.install(bundles["1.0.0"], "--keep", "2").returncode == 0
    blobs = releases.load(host.state, "1.0.0").manifest().images[0].blobs
    for digest in blobs:
        assert os.stat(store_blob(host, digest)).st_ino == os.stat(registry_blob(host, digest)).st_ino, digest
    assert pull(host, "1.0.0", tmp_path) == []
    docker("restart", ManagedRegistry(host.root / "registry").container)
    assert pull(host, "1.0.0", tmp_path) == []
    # Two more releases with --keep 2: 1.0.0 goes, with its own blobs in the store and, by the
    # registry's garbage collection, in the registry; what 1.1.0 and 1.2.0 need stays.
    for version in ("1.1.0", "1.2.0"):
        res = host.install(bundles[version], "--keep", "2")
        assert res.returncode == 0, res.stderr
    assert not releases.exists(host.state, "1.0.0")
    own = [d for d in blobs if d not in releases.load(host.state, "1.1.0").manifest().all_blobs]
    assert own and not any(registry_blob(host, d).exists() or store_blob(host, d).exists() for d in own)
    assert pull(host, "1.1.0", tmp_path) == [] and pull(host, "1.2.0", tmp_path) == []


def test_a_blob_damaged_in_the_store_is_not_served_as_good(host, keys, tmp_path):
    bundle = make_bundle(tmp_path / "b", "1.0.0", keys, payload=1 << 20)
    assert host.install(bundle).returncode == 0
    image = releases.load(host.state, "1.0.0").manifest().images[0]
    layer = max(image.blobs, key=lambda d: store_blob(host, d).stat().st_size)
    path = store_blob(host, layer)
    os.chmod(path, 0o644)
    with path.open("r+b") as fh:
        fh.write(b"\0" * 64)
    failed = pull(host, "1.0.0", tmp_path)
    assert len(failed) == 1 and failed[0].startswith("skopeo") and "digest" in failed[0].lower(), failed
    res = host.run("store", "verify")
    assert res.returncode == 4 and layer[:19] in res.stderr, res.stderr
