"""Split bundles (parts + signed index) and delta bundles, against real Docker, registry, Compose."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import images
from tests.hosts import HEALTHY, Host


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keys) -> Path:
    d = tmp_path_factory.mktemp("split")
    (d / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(images.BUSYBOX, d / "rootfs" / "bin" / "busybox")
    (d / "satchel.yaml").write_text("name: tool\nversion: 1.0.0\nimages:\n  - ref: acme/tool:1.0\n    source: dir:rootfs\n")
    out = d / "tool-1.0.0.bundle"
    from installer.cli import main

    assert main(["-q", "build", str(d / "satchel.yaml"), "-o", str(out), "--key", str(keys["vendor"]),
                 "--cache", str(d / "cache")]) == 0
    return out


def split(cli, bundle: Path, dest: Path, size: str, keys) -> list[Path]:
    res = cli("split", bundle, "--size", size, "--key", keys["vendor"], "-o", dest)
    assert res.code == 0, res.err
    return sorted(dest.glob(bundle.name + ".[0-9]*"))


@pytest.mark.parametrize("size", ["333", "777", "65537", "300K"])
def test_split_at_odd_sizes_verifies_from_index_first_part_and_directory(cli, bundle, tmp_path, keys, size):
    parts = split(cli, bundle, tmp_path, size, keys)
    assert len(parts) >= 2
    assert b"".join(p.read_bytes() for p in parts) == bundle.read_bytes()
    for target in (tmp_path / (bundle.name + ".parts"), parts[0], tmp_path):
        res = cli("verify", target, "--key", keys["vendor.pub"])
        assert res.code == 0, (target, res.err)
    info = cli("inspect", parts[0], "--json").json()
    assert [p["file"] for p in info["parts"]] == [p.name for p in parts]
    assert info["name"] == "tool"


def _verify(cli, target: Path, keys) -> tuple[int, str]:
    res = cli("verify", target, "--key", keys["vendor.pub"])
    assert res.code == 0 or len(res.err.strip().splitlines()) == 1, res.err
    return res.code, res.err.strip()


def test_every_damaged_part_is_named(cli, bundle, tmp_path, keys):
    parts = split(cli, bundle, tmp_path, "200K", keys)
    assert len(parts) >= 4
    first, second, third = parts[0], parts[1], parts[2]
    saved = {p: p.read_bytes() for p in parts}

    def restore() -> None:
        for p, data in saved.items():
            p.write_bytes(data)

    second.unlink()
    code, err = _verify(cli, first, keys)
    assert code == 3 and f"part 2 ({second.name}) is missing" in err and "copy it again" in err
    restore()
    third.write_bytes(saved[third][:-10])
    code, err = _verify(cli, first, keys)
    assert code == 3 and f"part 3 ({third.name}) is {len(saved[third]) - 10} bytes" in err
    restore()
    data = bytearray(saved[second])
    data[1000] ^= 0xFF
    second.write_bytes(bytes(data))
    code, err = _verify(cli, first, keys)
    assert code == 3 and f"part 2 ({second.name}) is damaged" in err and "copy it again" in err, err
    data = bytearray(saved[parts[-1]])
    data[-5] ^= 0xFF
    parts[-1].write_bytes(bytes(data))
    code, err = _verify(cli, first, keys)
    assert code == 3 and f"part 2 ({second.name}) is damaged" in err and parts[-1].name in err and "copy them" in err
    restore()
    second.write_bytes(saved[third])
    third.write_bytes(saved[second])
    code, err = _verify(cli, first, keys)
    assert code == 3 and f"part 2 ({second.name}) holds the content of part 3" in err, err
    restore()
    data = bytearray(saved[first])
    data[50] ^= 0x01           # inside the compressed manifest: the signature check fails first
    first.write_bytes(bytes(data))
    code, err = _verify(cli, first, keys)
    assert code == 3 and f"part 1 ({first.name}) is damaged" in err, err
    restore()
    assert _verify(cli, first, keys)[0] == 0


def test_the_parts_index_is_signed(cli, bundle, tmp_path, keys):
    split(cli, bundle, tmp_path, "200K", keys)
    index = tmp_path / (bundle.name + ".parts")
    res = cli("verify", index, "--key", keys["other.pub"])
    assert res.code == 3 and "untrusted" in res.err
    doc = json.loads(index.read_text())
    doc["index"]["parts"][0]["sha256"] = "0" * 64
    from signing import canonical

    index.write_bytes(canonical.dumps(doc))
    res = cli("verify", index, "--key", keys["vendor.pub"])
    assert res.code == 3 and "does not match" in res.err


def test_unreasonable_part_sizes_are_refused(cli, bundle, tmp_path, keys):
    for size in ("100", "0", "4X"):
        res = cli("split", bundle, "--size", size, "--key", keys["vendor"], "-o", tmp_path)
        assert res.code == 2, res.err
    assert not list(tmp_path.iterdir())


def test_build_split_size_writes_only_parts(cli, bundle, tmp_path, keys):
    spec = bundle.parent / "satchel.yaml"
    out = tmp_path / "t.bundle"
    res = cli("-q", "build", spec, "-o", out, "--key", keys["vendor"], "--cache", bundle.parent / "cache",
              "--split-size", "256K", "--json")
    assert res.code == 0, res.err
    assert not out.exists() and (tmp_path / "t.bundle.parts").exists() and (tmp_path / "t.bundle.001").exists()
    assert cli("verify", tmp_path, "--key", keys["vendor.pub"]).code == 0


# -- deltas, end to end -------------------------------------------------------------------

def _www_layer(version: str) -> bytes:
    return images.tar_bytes({"www/index.html": f"hello {version}\n".encode()}, mode=0o644)


@pytest.fixture(scope="module")
def delta_project(tmp_path_factory, keys) -> dict[str, Path]:
    """hello 1.0.0 and 1.1.0: the same busybox layer, a different www layer."""
    d = tmp_path_factory.mktemp("delta")
    layout = images.LayoutWriter(d / "layout")
    base = images.busybox_layer()
    for version in ("1.0.0", "1.1.0"):
        layout.tag(layout.image([base, _www_layer(version)], gz=False), version)
    out = {}
    for version in ("1.0.0", "1.1.0"):
        v = d / version
        v.mkdir()
        (v / "compose.yaml").write_text(
            f"services:\n  web:\n    image: acme/web:{version}\n"
            '    command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
            f"    healthcheck:\n      test: {HEALTHY}\n      interval: 1s\n      retries: 5\n")
        (v / "satchel.yaml").write_text(f"name: hello\nversion: {version}\ncompose: [compose.yaml]\n"
                                        f"images:\n  - ref: acme/web:{version}\n    source: oci:{d / 'layout'}\n")
        out[version] = v
    return out


def build_cli(spec_dir: Path, out: Path, keys, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-c", "import sys; from installer.cli import main; sys.exit(main(sys.argv[1:]))",
                           "-q", "build", str(spec_dir / "satchel.yaml"), "-o", str(out), "--key", str(keys["vendor"]),
                           "--cache", str(spec_dir.parent / "cache"), *map(str, extra)], capture_output=True, text=True)


@pytest.fixture
def hosts(tmp_path, keys):
    made: list[Host] = []

    def new(name: str) -> Host:
        made.append(Host(tmp_path / name, keys))
        return made[-1]

    yield new
    for h in made:
        h.cleanup()


def test_delta_on_a_host_with_the_base_and_refused_without(cli, delta_project, keys, tmp_path, hosts):
    full_old, full_new = tmp_path / "hello-1.0.0.bundle", tmp_path / "hello-1.1.0.bundle"
    for version, out in (("1.0.0", full_old), ("1.1.0", full_new)):
        assert build_cli(delta_project[version], out, keys).returncode == 0
    customer = hosts("customer")
    stick = tmp_path / "stick"
    parts = split(cli, full_old, stick, "300K", keys)
    res = customer.install(parts[0])       # installed straight from the parts on the stick
    assert res.returncode == 0, res.stderr
    assert customer.served_version() == "hello 1.0.0"
    have = tmp_path / "have.json"
    assert customer.run("inventory", "-o", have).returncode == 0
    delta = tmp_path / "hello-1.1.0-delta.bundle"
    res = build_cli(delta_project["1.1.0"], delta, keys, "--delta-from", have)
    assert res.returncode == 0, res.stderr
    from_bundle = tmp_path / "hello-1.1.0-delta2.bundle"
    assert build_cli(delta_project["1.1.0"], from_bundle, keys, "--delta-from", full_old).returncode == 0

    info = cli("inspect", delta, "--json").json()
    assert info["delta"]["base"] == [{"name": "hello", "version": "1.0.0"}]
    assert info["delta"]["size"] > len(images.busybox_layer()) - 1
    assert delta.stat().st_size < full_new.stat().st_size / 2
    assert cli("inspect", from_bundle, "--json").json()["delta"] == info["delta"]
    assert cli("verify", delta, "--key", keys["vendor.pub"]).code == 0

    fresh = hosts("fresh")
    res = fresh.install(delta)
    assert res.returncode == 3 and "install hello 1.0.0 first" in res.stderr, res.stderr
    assert fresh.snapshot()["files"] == {} or not any(
        k.startswith(("releases/", "store/blobs/")) for k in fresh.snapshot()["files"])
    assert fresh.state.current() is None

    damaged_stick = tmp_path / "damaged"
    delta_parts = split(cli, delta, damaged_stick, "1K", keys)
    data = bytearray(delta_parts[-2].read_bytes())
    data[10] ^= 0xFF
    delta_parts[-2].write_bytes(bytes(data))
    before = customer.snapshot()
    res = customer.install(damaged_stick)
    assert res.returncode == 3 and f"({delta_parts[-2].name}) is damaged" in res.stderr, res.stderr
    assert customer.snapshot() == before

    res = customer.install(delta)
    assert res.returncode == 0, res.stderr
    digest = info["images"][0]["digest"]
    assert customer.containers()["web"]["Config"]["Image"].endswith("@" + digest)
    assert customer.served_version() == "hello 1.1.0"
    assert customer.run("rollback").returncode == 0 and customer.served_version() == "hello 1.0.0"
