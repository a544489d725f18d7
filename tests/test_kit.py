"""The customer kit: one file that runs Satchel on a host with nothing but Docker. Built by
scripts/build-kit.sh once per run; run in a bare busybox + glibc container (tests/kitbox.py).
The customer story through the kit is in the tests parametrized with host "kit"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bundler.kit import kitfile
from installer.targets import for_release
from installer.tools.registry import ID_HEADER, ManagedRegistry
from tests.hosts import make_bundle
from tests.infra import Registry, docker


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keys) -> Path:
    return make_bundle(tmp_path_factory.mktemp("kit-bundle"), "1.0.0", keys)


def test_version_names_the_kit_and_what_it_carries(kit, kit_box):
    res = kit_box.run(["--version"], {})
    assert res.returncode == 0, res.stderr
    meta = kitfile.read_meta(kit)
    assert res.stdout.startswith(f"satchel {meta['version']}\n")
    assert f"kit linux/amd64 ({kit})" in res.stdout and f"needs glibc >= {meta['glibc']}" in res.stdout
    for name in ("python 3.", "docker-compose 2.", "registry 2.", "helm v3."):
        assert name in res.stdout, res.stdout


def test_kit_is_checkable_with_satchel_and_with_plain_tools(kit, keys, cli, tmp_path):
    res = cli("verify-kit", kit, "--key", keys["vendor.pub"])
    assert res.code == 0 and "OK (satchel" in res.out, res.err
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=kit.parent, capture_output=True).returncode == 0
    openssl = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", keys["vendor.pub"], "-rawin",
                              "-in", kit.parent / "SHA256SUMS", "-sigfile", kit.parent / "SHA256SUMS.sig"],
                             capture_output=True, text=True)
    assert "Signature Verified Successfully" in openssl.stdout, openssl.stderr
    res = cli("verify-kit", kit, "--key", keys["other.pub"])
    assert res.code == 3 and "not signed by the given key" in res.err

    damaged = tmp_path / "copy"
    shutil.copytree(kit.parent, damaged)
    copy = damaged / kit.name
    with copy.open("r+b") as fh:                  # one byte in the middle of the payload
        fh.seek(copy.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    res = cli("verify-kit", copy, "--key", keys["vendor.pub"])
    assert res.code == 3 and "damaged or altered" in res.err
    # Run anyway: the launcher's zstd checksum stops it, and it leaves no half-extracted program.
    cache = tmp_path / "cache"
    run = subprocess.run([copy, "--version"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "SATCHEL_KIT_CACHE": str(cache)})
    assert run.returncode == 3 and "damaged" in run.stderr, run.stderr
    assert list(cache.iterdir()) == []


def test_kit_cache_must_be_private(kit, tmp_path):
    cache = tmp_path / "shared-cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    run = subprocess.run([kit, "--version"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "SATCHEL_KIT_CACHE": str(cache)})
    assert run.returncode == 4 and "writable by no one else" in run.stderr
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("host", ["kit"], indirect=True)
def test_registry_comes_back_by_itself_and_a_repull_works(host, bundle):
    assert host.install(bundle).returncode == 0
    registry = ManagedRegistry(host.root / "registry")
    pid = json.loads(docker("inspect", registry.container))[0]["State"]["Pid"]
    os.kill(pid, 9)
    start, back = time.monotonic(), None
    while time.monotonic() - start < 20:   # no Satchel command runs meanwhile
        try:
            if requests.get(f"http://{registry.host}/v2/", timeout=1).headers.get(ID_HEADER):
                back = time.monotonic() - start
                break
        except requests.RequestException:
            pass
        time.sleep(0.05)
    assert back is not None and back < 10, "the registry did not come back by itself"
    # Remove the app's containers and images: `docker compose up` must pull them again.
    release = host.state.current()
    containers = host.containers()
    images = {c["Config"]["Image"] for c in containers.values()}
    docker("rm", "-f", *[c["Id"] for c in containers.values()])
    docker("rmi", *images)
    from installer.releases import load

    loaded = load(host.state, release)
    ok, detail = for_release(loaded).apply(loaded, 60, lambda states: None)
    assert ok, detail
    assert host.served_version() == "hello 1.0.0"


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_foreign_registry_on_the_managed_port_is_refused(host, bundle, tmp_path):
    foreign = Registry(tmp_path / "foreign")
    try:
        host.env["SATCHEL_REGISTRY_PORT"] = str(foreign.port)
        res = host.install(bundle)
        assert res.returncode == 4, res.stderr
        assert f"registry port {foreign.port}: wanted free or this root's registry, found something Satchel " \
               "did not start" in res.stderr
        assert "SATCHEL_REGISTRY_PORT" in res.stderr
        assert requests.get(f"http://{foreign.host}/v2/_catalog").json()["repositories"] == []
        assert host.state.current() is None and not (host.root / "store").exists()
        assert not (host.root / "registry").exists()
    finally:
        foreign.stop()


def restamped(kit: Path, out: Path, version: str) -> Path:
    """The same kit with another version in its trailer's kit.json (what install reads to
    decide), as a vendor's newer or older kit; read with struct, independently of kitfile."""
    import struct

    data = kit.read_bytes()
    magic, p_off, p_len, m_off, m_len, digest = struct.unpack("<16sQQQQ64s", data[-112:])
    meta = json.loads(data[m_off:m_off + m_len])
    meta["version"] = version
    new_meta = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data[:m_off] + new_meta + struct.pack("<16sQQQQ64s", magic, p_off, p_len, m_off,
                                                          len(new_meta), digest))
    out.chmod(0o755)
    return out


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kit_upgrades_itself_from_a_bundle_and_rollback_restores_it(kit, kit_box, keys, tmp_path):
    from tests.hosts import Host
    from tests.kitbox import KitBox

    running = tmp_path / "bin" / "satchel"          # where the customer keeps the kit
    running.parent.mkdir()
    shutil.copy(kit, running)
    original = sha(running)
    host = Host(tmp_path / "root", keys, KitBox(running, kit_box.name))
    try:
        bundles = {}
        for version, kit_version in (("1.0.0", None), ("1.1.0", "9.0.0"), ("1.2.0", "0.0.1")):
            d = tmp_path / version
            extra = ""
            if kit_version:
                restamped(kit, d / "kit" / f"satchel-{kit_version}-linux-amd64", kit_version)
                extra = f"installer: kit/satchel-{kit_version}-linux-amd64\n"
            bundles[version] = make_bundle(d, version, keys, spec_extra=extra)
        newer = sha(tmp_path / "1.1.0" / "kit" / "satchel-9.0.0-linux-amd64")

        assert host.install(bundles["1.0.0"]).returncode == 0
        assert sha(running) == original
        res = host.install(bundles["1.1.0"])
        assert res.returncode == 0, res.stderr
        assert "upgraded to 9.0.0" in res.stderr
        assert sha(running) == newer and os.access(running, os.X_OK)
        event = host.state.history()[-1]
        assert (event["event"], event["version"], event["release"]) == ("kit-replaced", "9.0.0", "1.1.0")
        assert sha(Path(event["kept"])) == original
        assert host.run("--version").returncode == 0                      # the new file runs
        assert host.install(bundles["1.1.0"]).returncode == 0 and sha(running) == newer   # no-op

        before = host.snapshot()
        res = host.install(bundles["1.2.0"])                              # carries an older kit
        assert res.returncode == 3 and "older than this kit" in res.stderr, res.stderr
        assert host.snapshot() == before and sha(running) == newer

        res = host.run("rollback")
        assert res.returncode == 0, res.stderr
        assert host.state.current() == "1.0.0" and host.served_version() == "hello 1.0.0"
        assert sha(running) == original
        assert host.state.history()[-1]["event"] == "kit-restored"
    finally:
        host.cleanup()


def test_too_old_glibc_gets_one_clear_line(kit):
    """The launcher is static, so it runs anywhere and can read the host's libc banner first:
    a host whose libc says 2.17 (as CentOS 7's does) is told the floor instead of a loader error."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        banner = b"\x7fELF...GNU C Library (GNU libc) stable release version 2.17, by Roland McGrath et al.\n"
        info = tarfile.TarInfo("lib64/libc.so.6")
        info.size = len(banner)
        tar.addfile(info, io.BytesIO(banner))
    docker("import", "-", "satchel-test/old-libc:1", input=buf.getvalue())
    res = subprocess.run(["docker", "run", "--rm", "-v", f"{kit}:/satchel:ro", "satchel-test/old-libc:1",
                          "/satchel", "--version"], capture_output=True, text=True)
    floor = kitfile.read_meta(kit)["glibc"]
    assert res.returncode == 4, res.stderr
    assert res.stderr.strip() == (f"satchel: error: this kit needs glibc {floor} or newer and this host has 2.17: "
                                  "use a kit built on an older system (docs/KIT.md)")


@pytest.mark.parametrize("host", ["kit"], indirect=True)
def test_two_files_one_command_the_kit_trusts_its_vendor(host, bundle, tmp_path, keys):
    """A fresh host with the kit and a bundle: `install BUNDLE` with no key and no trust store.
    The kit's built-in vendor key counts only while the host trusts no key of its own."""
    from signing.keys import SigningKey, write_key_pair

    res = host.run("install", bundle, "--project", host.project, "--timeout", "20")
    assert res.returncode == 0, res.stderr
    assert host.served_version() == "hello 1.0.0"
    # Once the host's store holds a key, the kit's key no longer counts.
    _, stranger = write_key_pair(SigningKey.generate(), tmp_path / "stranger")
    assert host.run("trust", "add", stranger).returncode == 0
    again = make_bundle(tmp_path / "1.1.0", "1.1.0", keys)
    res = host.run("install", again, "--project", host.project, "--timeout", "20")
    assert res.returncode == 3 and "untrusted" in res.stderr, res.stderr
    assert host.state.current() == "1.0.0"
