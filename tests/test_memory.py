"""Memory stays flat as bundles grow: every command that moves a bundle's bytes needs no more
memory for a 448 MiB bundle than for a 192 MiB one, and none needs 200 MiB (peak RSS of the
child process and its children, via wait4).

The smaller bundle must still be large enough to fill the fixed buffers: zstd's multi-threaded
job buffers when building, the hashing lanes' chunk pool (bundler/lanes.py, 48 MiB) when
reading (the reader runs ahead of the lane hashing a member by about half its size, so only a member
of a few times the pool fills it); with smaller members the comparison would measure the pool."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import BUSYBOX
from tests.infra import Registry, docker_available, free_port
from tests.launch import RUN

# A child spawned straight from pytest (vfork) would report pytest's own high-water mark;
# a small launcher that forks gives the measured process a fresh address space.
LAUNCH = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n"
          "_, status, usage = os.wait4(pid, 0)\nprint(usage.ru_maxrss)\nsys.exit(os.waitstatus_to_exitcode(status))")
SIZES = {"small": 192, "large": 448}


def peak_rss_mib(*args: str | Path, env: dict[str, str] | None = None) -> float:
    proc = subprocess.run([sys.executable, "-c", LAUNCH, sys.executable, "-c", RUN, *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
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


def measure(root: Path, mib: int, keys: dict[str, Path]) -> tuple[dict[str, float], Path]:
    """Peak RSS of each command on a bundle of one `mib` MiB layer."""
    spec, bundle = project(root, mib), root / "b.bundle"
    pub = keys["vendor.pub"]
    peaks = {"build": peak_rss_mib("-q", "build", spec, "-o", bundle, "--key", keys["vendor"], "--cache", root / "c")}
    assert bundle.stat().st_size > mib << 20
    peaks["verify"] = peak_rss_mib("-q", "verify", bundle, "--key", pub)
    peaks["inspect"] = peak_rss_mib("inspect", bundle)
    peaks["split"] = peak_rss_mib("split", bundle, "--size", f"{mib // 3}M", "--key", keys["vendor"],
                                  "-o", root / "parts")
    peaks["verify (split)"] = peak_rss_mib("-q", "verify", root / "parts", "--key", pub)
    peaks["preflight"] = peak_rss_mib("preflight", bundle, "--key", pub)
    registry = Registry(root / "registry")
    try:
        pushed = {"SATCHEL_ROOT": str(root / "pushed")}
        peaks["install (push to a registry)"] = peak_rss_mib("-q", "install", bundle, "--key", pub, "--registry",
                                                            registry.host, env=pushed)
    finally:
        registry.stop()
    managed = {"SATCHEL_ROOT": str(root / "managed"), "SATCHEL_REGISTRY_PORT": str(free_port())}
    try:
        peaks["install (managed, zero-copy)"] = peak_rss_mib("-q", "install", bundle, "--key", pub, env=managed)
        peaks["install (again: nothing to do)"] = peak_rss_mib("-q", "install", bundle, "--key", pub, env=managed)
        peaks["store verify"] = peak_rss_mib("store", "verify", env=managed)
        peaks["status"] = peak_rss_mib("status", env=managed)
        peaks["inventory"] = peak_rss_mib("inventory", "-o", root / "inventory.json", env=managed)
        peaks["diagnostics"] = peak_rss_mib("diagnostics", "-o", root / "diag.tar.gz", env=managed)
        peaks["remove"] = peak_rss_mib("remove", "mem", "--yes", env=managed)
    finally:
        from installer.tools.registry import ManagedRegistry

        ManagedRegistry(root / "managed" / "registry").stop()
    return peaks, bundle


@pytest.fixture(scope="module")
def measured(tmp_path_factory, keys) -> dict[str, tuple[dict[str, float], Path]]:
    docker_available()
    out = {name: measure(tmp_path_factory.mktemp(name), mib, keys) for name, mib in SIZES.items()}
    print("\npeak RSS (MiB) by command, " + " / ".join(f"{n} {m} MiB" for n, m in SIZES.items()) + ": " +
          ", ".join(f"{cmd} {out['small'][0][cmd]:.0f}/{out['large'][0][cmd]:.0f}" for cmd in out["small"][0]))
    return out


def test_every_command_stays_under_200_mib_at_both_sizes(measured):
    over = [f"{cmd} at {name}: {peak:.0f} MiB" for name, (peaks, _) in measured.items()
            for cmd, peak in peaks.items() if peak >= 200]
    assert not over, over


def test_memory_does_not_grow_with_the_bundle(measured):
    """Allowances: zstd's job buffers when building; otherwise a few MiB of noise."""
    small, large = measured["small"][0], measured["large"][0]
    grew = [f"{cmd}: {small[cmd]:.0f} -> {large[cmd]:.0f} MiB" for cmd in small
            if large[cmd] - small[cmd] >= (32 if cmd == "build" else 24)]
    assert not grew, grew


def test_a_delta_from_an_old_bundle_reads_it_as_a_stream(measured, keys, tmp_path):
    """build --delta-from OLD.bundle looks at the old bundle's manifest only (it read the whole
    file once, to see its first byte: 1.8 GiB for a 1.9 GB bundle)."""
    old = measured["large"][1]
    spec = project(tmp_path / "next", 1)
    peak = peak_rss_mib("-q", "build", spec, "-o", tmp_path / "d.bundle", "--key", keys["vendor"],
                        "--cache", tmp_path / "c", "--delta-from", old, "--no-sbom")
    assert old.stat().st_size > 448 << 20
    assert peak < 200, f"build --delta-from a {old.stat().st_size >> 20} MiB bundle peaked at {peak:.0f} MiB"
