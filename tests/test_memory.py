"""Memory stays flat as bundles grow: build and verify of a 320 MiB bundle need no more
memory than those of a 64 MiB one (peak RSS of the child process, via wait4).

The smaller bundle must still be large enough to fill zstd's multi-threaded job buffers
(a fixed few tens of MiB), as the design's "5 GB vs 50 MB" promise does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import BUSYBOX
from tests.launch import RUN

# A child spawned straight from pytest (vfork) would report pytest's own high-water mark;
# a small launcher that forks gives the measured process a fresh address space.
LAUNCH = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n"
          "_, status, usage = os.wait4(pid, 0)\nprint(usage.ru_maxrss)\nsys.exit(os.waitstatus_to_exitcode(status))")


def peak_rss_mib(*args: str | Path) -> float:
    proc = subprocess.run([sys.executable, "-c", LAUNCH, sys.executable, "-c", RUN, *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1]) / 1024


def project(root: Path, payload_mib: int) -> Path:
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
    with (rootfs / "data.bin").open("wb") as fh:
        for _ in range(payload_mib):
            fh.write(os.urandom(1 << 20))
    (root / "satchel.yaml").write_text("name: mem\nversion: 1.0.0\nimages:\n"
                                       "  - ref: acme/big:1.0\n    source: dir:rootfs\n")
    return root / "satchel.yaml"


@pytest.fixture(scope="module")
def measured(tmp_path_factory, keys) -> dict[str, tuple[float, float, Path]]:
    out = {}
    for name, mib in (("small", 64), ("large", 320)):
        root = tmp_path_factory.mktemp(name)
        spec = project(root, mib)
        bundle = root / "b.bundle"
        build = peak_rss_mib("-q", "build", spec, "-o", bundle, "--key", keys["vendor"], "--cache", root / "c")
        verify = peak_rss_mib("-q", "verify", bundle, "--key", keys["vendor.pub"])
        assert bundle.stat().st_size > mib << 20
        out[name] = (build, verify, bundle)
    return out


def test_verify_memory_is_flat(measured):
    small, large = measured["small"][1], measured["large"][1]
    assert large - small < 24, f"verify peak RSS grew from {small:.0f} MiB to {large:.0f} MiB"
    assert large < 200


def test_build_memory_is_flat(measured):
    small, large = measured["small"][0], measured["large"][0]
    assert large - small < 32, f"build peak RSS grew from {small:.0f} MiB to {large:.0f} MiB"
    assert large < 200


def test_a_delta_from_an_old_bundle_reads_it_as_a_stream(measured, keys, tmp_path):
    """build --delta-from OLD.bundle looks at the old bundle's manifest only (it read the whole
    file once, to see its first byte: 1.8 GiB for a 1.9 GB bundle)."""
    old = measured["large"][2]
    spec = project(tmp_path / "next", 1)
    peak = peak_rss_mib("-q", "build", spec, "-o", tmp_path / "d.bundle", "--key", keys["vendor"],
                        "--cache", tmp_path / "c", "--delta-from", old, "--no-sbom")
    assert old.stat().st_size > 320 << 20
    assert peak < 200, f"build --delta-from a {old.stat().st_size >> 20} MiB bundle peaked at {peak:.0f} MiB"
