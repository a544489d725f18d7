"""Pushing to an external registry (a real CNCF Distribution): a layer that several images share
is sent once and mounted into the other repositories, and the registry is asked about every
blob of an image in one round of parallel requests, not one after the other."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time

from bundler.oci.registry import Endpoint, RegistryClient
from tests.images import LayoutWriter, busybox_layer, tar_bytes
from tests.infra import Registry

LATENCY = 0.05      # seconds each HEAD takes on top of the real request, as over a network


def test_a_shared_layer_is_sent_once_and_mounted_and_heads_run_in_parallel(cli, keys, tmp_path, monkeypatch):
    layout = LayoutWriter(tmp_path / "layout")
    shared = tar_bytes({"data/shared.bin": os.urandom(4 << 20)}, 0o644)
    for i in range(3):
        own = tar_bytes({f"app/{i}.txt": f"image {i}\n".encode()}, 0o644)
        layout.tag(layout.image([busybox_layer(), shared, own], gz=False), f"app{i}")
    spec = tmp_path / "satchel.yaml"
    spec.write_text("name: shared\nversion: 1.0.0\nimages:\n" + "".join(
        f"  - ref: acme/app{i}:app{i}\n    source: oci:{tmp_path / 'layout'}\n" for i in range(3)))
    bundle = tmp_path / "b.bundle"
    assert cli("-q", "build", spec, "-o", bundle, "--key", keys["vendor"], "--cache", tmp_path / "c").code == 0

    sent: list[tuple[str, str]] = []
    mounted: list[tuple[str, str, bool]] = []
    heads = {"now": 0, "most": 0}
    lock = threading.Lock()
    real_push, real_mount, real_has = RegistryClient.push_blob, RegistryClient.mount_blob, RegistryClient.has_blob

    def push_blob(self, repo, desc, src):
        sent.append((repo, desc.digest))
        return real_push(self, repo, desc, src)

    def mount_blob(self, repo, digest, source_repo):
        done = real_mount(self, repo, digest, source_repo)
        mounted.append((repo, digest, done))
        return done

    def has_blob(self, repo, digest):
        with lock:
            heads["now"] += 1
            heads["most"] = max(heads["most"], heads["now"])
        try:
            time.sleep(LATENCY)
            return real_has(self, repo, digest)
        finally:
            with lock:
                heads["now"] -= 1

    monkeypatch.setattr(RegistryClient, "push_blob", push_blob)
    monkeypatch.setattr(RegistryClient, "mount_blob", mount_blob)
    monkeypatch.setattr(RegistryClient, "has_blob", has_blob)
    monkeypatch.setenv("SATCHEL_ROOT", str(tmp_path / "root"))
    registry = Registry(tmp_path / "registry")
    try:
        res = cli("-q", "install", bundle, "--key", keys["vendor.pub"], "--registry", registry.host)
        assert res.code == 0, res.err
        shared_digest = "sha256:" + hashlib.sha256(shared).hexdigest()
        # Each distinct blob crossed the wire once; the shared layers were mounted twice each.
        assert len(sent) == len({d for _, d in sent}) and (("acme/app0", shared_digest) in sent), sent
        assert sorted(r for r, d, ok in mounted if d == shared_digest and ok) == ["acme/app1", "acme/app2"], mounted
        assert heads["most"] >= 2, f"HEAD requests ran one at a time ({heads})"
        monkeypatch.undo()
        client = RegistryClient(Endpoint(registry.host, insecure=True))
        for i in range(3):
            assert client.has_blob(f"acme/app{i}", shared_digest)
            desc, _ = client.get_manifest(f"acme/app{i}", f"app{i}")
            # skopeo fetches every blob of the image again and checks each digest
            proc = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                   f"docker://{registry.host}/acme/app{i}@{desc.digest}", f"dir:{tmp_path / str(i)}"],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
    finally:
        registry.stop()
