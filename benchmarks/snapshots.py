"""Data-volume snapshot and restore: Satchel next to `docker run … tar | zstd`, in one run.

A volume of `--mib` MiB (half incompressible random files, half text) is snapshotted and
restored by each, interleaved, `--runs` times; medians are printed with throughput (MB/s of
volume data) and peak memory. Satchel: the engine's archive API through a created, never
started container, zstd level 3 (multi-threaded) and sha256 in this process
(installer/snapshots.py). Baseline: busybox tar in a container, piped through `zstd -3 -T0`.

Usage: python benchmarks/snapshots.py [--mib 1024] [--runs 3]. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import Run, run

from tests import images
from tests.infra import docker

SNAPSHOT = "\n".join([
    "import sys, json",
    "from installer.tools import volumes",
    "from installer.snapshots import write_compressed",
    "with volumes.export(sys.argv[1], sys.argv[2]) as chunks:",
    "    write_compressed(__import__('pathlib').Path(sys.argv[3]), chunks)",
])
RESTORE = "\n".join([
    "import sys",
    "from installer.tools import volumes",
    "from installer.snapshots import read_compressed",
    "with open(sys.argv[3], 'rb') as fh:",
    "    volumes.replace({'Name': sys.argv[1]}, sys.argv[2], read_compressed(fh))",
])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="satchel-bench-snap-"))
    image, volume = f"satchel-bench/busybox:{os.getpid()}", f"satchel-bench-{os.getpid()}"
    docker("import", "-", image, input=images.tar_bytes({"bin/busybox": images.BUSYBOX.read_bytes()}))
    # No log driver: a container's stdout would otherwise also be written to its JSON log.
    bb = f"docker run --rm --log-driver none -v {volume}:/d {image} /bin/busybox"
    try:
        docker("volume", "create", volume)
        half = max(args.mib // 2, 1)
        docker("run", "--rm", "-v", f"{volume}:/d", image, "/bin/busybox", "sh", "-c",
               f"/bin/busybox dd if=/dev/urandom of=/d/random.bin bs=1M count={half} 2>/dev/null && "
               f"/bin/busybox yes 'a line of text such as logs and dumps hold 0123456789' | "
               f"/bin/busybox head -c {half << 20} > /d/text.log")
        mb = args.mib * (1 << 20) / 1e6
        python = [sys.executable, "-c"]
        results: dict[str, list[Run]] = {}
        for _ in range(args.runs):
            for name, cmd in (
                ("satchel snapshot", [*python, SNAPSHOT, volume, image, str(work / "s.tar.zst")]),
                ("docker run tar | zstd (snapshot)",
                 f"{bb} tar -C /d -cf - . | zstd -3 -T0 -q -f -o {work / 'b.tar.zst'}"),
                ("satchel restore", [*python, RESTORE, volume, image, str(work / "s.tar.zst")]),
                ("zstd -dc | docker run tar (restore)",
                 f"{bb} sh -c '/bin/busybox rm -rf /d/* /d/.[!.]*' && zstd -dc {work / 'b.tar.zst'} | "
                 f"docker run --rm -i -v {volume}:/d {image} /bin/busybox tar -C /d -xf -"),
            ):
                results.setdefault(name, []).append(run(name, cmd))
        med = {n: Run(n, statistics.median(r.seconds for r in rs), max(r.peak_mib for r in rs))
               for n, rs in results.items()}
        sizes = {"satchel": (work / "s.tar.zst").stat().st_size, "baseline": (work / "b.tar.zst").stat().st_size}
        print(f"volume: {args.mib} MiB ({mb:.0f} MB); compressed: satchel {sizes['satchel'] / 1e6:.0f} MB, "
              f"baseline {sizes['baseline'] / 1e6:.0f} MB; medians of {args.runs}")
        print(f"{'':38} {'seconds':>8} {'MB/s':>8} {'peak MiB':>9} {'vs baseline':>12}")
        for ours, theirs in (("satchel snapshot", "docker run tar | zstd (snapshot)"),
                             ("satchel restore", "zstd -dc | docker run tar (restore)")):
            for name in (ours, theirs):
                r = med[name]
                print(f"{name:38} {r.seconds:8.2f} {mb / r.seconds:8.0f} {r.peak_mib:9.0f} "
                      f"{med[theirs].seconds / r.seconds:11.2f}x")
    finally:
        docker("volume", "rm", "-f", volume)
        docker("rmi", "-f", image)


if __name__ == "__main__":
    main()
