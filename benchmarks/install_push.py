"""Install-side benchmark, Satchel next to the baselines in one run.

managed:   satchel install into its managed registry (zero-copy: hard links into the
           registry's storage) vs zstd -dc | tar -x, then skopeo copy oci:... docker://...
           --preserve-digests into a fresh registry (skopeo gets a layout verified by nobody)
push:      satchel install into an external registry (verify + stage + push by digest)
verify:    satchel verify vs the two-core limit: (CPU seconds of zstd -dc > /dev/null + CPU
           seconds of sha256 over every member) / 2, the sha256 by the same OpenSSL code
           Satchel uses, over the extracted members
disk:      used on the customer's side after install (store + registry, a hard-linked file
           counted once) vs extracted layout + skopeo's registry
re-install: satchel install of the installed bundle (the no-op path)

Runs are interleaved (drift hits both sides alike); medians of --runs. Before each run: `sync`,
so no run pays for the previous one's writeback, and as root the page cache is dropped and the
run's input read back into it: every run starts with its input cached and memory free (on a
host whose page cache is full, each written page first costs a reclaim, which made writes
several times slower for whichever side came later).

Usage: python benchmarks/install_push.py [--images N] [--layer-mib M] [--layers L] [--runs R]
  --layers 0 (default): N images of a shared busybox layer and two own M MiB layers, from a registry
  --layers 17 --images 8 --layer-mib 24: the large case, ~3 GB of file systems in ~2 GB of gzip layers
Never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from common import SATCHEL, Registry, Run, bench_project, make_large_layout, median, run, setup, table

from installer.tools.registry import ManagedRegistry
from signing.keys import SigningKey, write_key_pair
from tests.infra import free_port

# CPU seconds of the hashing alone (not the interpreter's start) go to the file argv[2].
HASH_MEMBERS = ("import hashlib, pathlib, sys, time\n"
                "start = time.process_time()\n"
                "for f in sorted(pathlib.Path(sys.argv[1]).rglob('*')):\n"
                "    if f.is_file():\n"
                "        with f.open('rb') as fh: hashlib.file_digest(fh, 'sha256')\n"
                "pathlib.Path(sys.argv[2]).write_text(str(time.process_time() - start))\n")


def disk_mb(*paths: Path) -> float:
    """Bytes on disk under the paths, a file with several names counted once (one du call)."""
    out = subprocess.run(["du", "-s", "--block-size=1", "-c", *map(str, paths)], check=True, capture_output=True,
                         text=True).stdout
    return int(out.splitlines()[-1].split()[0]) / 1e6


def read_into_cache(path: Path) -> None:
    """Read a file, or every file under a directory, so that it is in the page cache."""
    for f in [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()):
        with f.open("rb") as fh:
            while fh.read(1 << 20):
                pass


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=int, default=0, help="layers per image (the large case); 0: small case")
    parser.add_argument("--runs", type=int, default=1)


def spec_for(work: Path, args: argparse.Namespace, vendor: Registry) -> Path:
    if not args.layers:
        return bench_project(work, vendor, args.images, args.layer_mib).spec
    tags = make_large_layout(work, args.images, args.layers, args.layer_mib)
    write_key_pair(SigningKey.generate(), work / "k")
    spec = work / "satchel.yaml"
    spec.write_text("name: bench\nversion: 1.0.0\nimages:\n" + "".join(
        f"  - ref: bench/app{i}:{t}\n    source: oci:{work / 'src-layout'}\n" for i, t in enumerate(tags)))
    return spec


def main() -> None:
    args, work = setup(options)
    vendor = Registry(work / "vendor")
    registries = [vendor]          # a fresh destination for every copy: nothing is there yet
    managed_roots: list[Path] = []
    try:
        spec = spec_for(work, args, vendor)
        bundle, pub = work / "b.bundle", str(work / "k.pub")
        subprocess.run([*SATCHEL, "-q", "build", str(spec), "-o", str(bundle), "--key", str(work / "k.key"),
                        "--cache", str(work / "cache"), "--no-sbom"], check=True)
        facts = json.loads(subprocess.run([*SATCHEL, "inspect", str(bundle), "--json"], check=True,
                                          capture_output=True, text=True).stdout)
        unpacked, refs = facts["deduped_size"] / 1e6, [i["ref"] for i in facts["images"]]
        runs: dict[str, list[Run]] = {}

        def timed(label: str, cmd: list[str] | str, before: Callable[[], None] | None = None,
                  reads: Path | None = None) -> None:
            if before:
                before()
            subprocess.run(["sync"], check=True)
            if os.geteuid() == 0:
                Path("/proc/sys/vm/drop_caches").write_text("3")
                read_into_cache(reads or bundle)
            runs.setdefault(label, []).append(run(label, cmd))

        layout = work / "extracted"

        def fresh_layout() -> None:
            shutil.rmtree(layout, ignore_errors=True)
            layout.mkdir()

        def satchel_env(root: Path, port: int | None = None) -> str:
            return f"SATCHEL_ROOT={root}" + (f" SATCHEL_REGISTRY_PORT={port}" if port else "")

        for i in range(args.runs):
            timed("zstd -dc > /dev/null", f"zstd -dc {bundle} > /dev/null")
            timed("satchel verify", [*SATCHEL, "-q", "verify", str(bundle), "--key", pub])
            timed("zstd -dc | tar -x", f"zstd -dc {bundle} | tar -x -C {layout}", fresh_layout)
            timed("sha256 of every member", [sys.executable, "-c", HASH_MEMBERS, str(layout), str(work / "cpu")],
                  reads=layout)
            runs["sha256 of every member"][-1].cpu_seconds = float((work / "cpu").read_text())
            skopeo_dest, dest = Registry(work / f"skopeo-dest-{i}"), Registry(work / f"satchel-dest-{i}")
            registries += [skopeo_dest, dest]
            copies = " && ".join(
                f"skopeo copy --quiet --preserve-digests --dest-tls-verify=false "
                f"oci:{layout}:{r} docker://{skopeo_dest.host}/{r.split('/', 1)[1]}" for r in refs)
            timed("skopeo copy --preserve-digests", copies, reads=layout)
            managed = work / f"root-managed-{i}"
            managed_roots.append(managed)
            install = " ".join(map(repr, [*SATCHEL, "-q", "install", str(bundle), "--key", pub]))
            timed("satchel install, managed zero-copy", f"{satchel_env(managed, free_port())} {install}")
            timed("satchel re-install (nothing to do)", f"{satchel_env(managed)} {install}")
            pushed = f"{satchel_env(work / f'root-push-{i}')} {install} --registry {dest.host}"
            timed("satchel install, push to a registry", pushed)
            if i + 1 < args.runs:       # the registry stays for the next run; its disk is measured once
                ManagedRegistry(managed / "registry").stop()

        med = {label: median(label, results) for label, results in runs.items()}
        extract, skopeo = med["zstd -dc | tar -x"], med["skopeo copy --preserve-digests"]
        baseline = Run("extract + skopeo", extract.seconds + skopeo.seconds, max(extract.peak_mib, skopeo.peak_mib))
        print(f"\n{len(refs)} images, {sum(i['blobs'] for i in facts['images'])} blob references, "
              f"{unpacked:.0f} MB unpacked, bundle {bundle.stat().st_size / 1e6:.0f} MB; medians of {args.runs}\n")
        print("verify + load into a registry (higher 'vs baseline' is better)")
        table([("zstd -dc | tar -x + skopeo copy", baseline, unpacked),
               ("  of which zstd -dc | tar -x", extract, unpacked),
               ("  of which skopeo copy", skopeo, unpacked),
               ("satchel verify (alone)", med["satchel verify"], unpacked),
               ("satchel install, push to a registry", med["satchel install, push to a registry"], unpacked),
               ("satchel install, managed zero-copy", med["satchel install, managed zero-copy"], unpacked)],
              baseline)
        zdc, hashing, verify = med["zstd -dc > /dev/null"], med["sha256 of every member"], med["satchel verify"]
        limit = (zdc.cpu_seconds + hashing.cpu_seconds) / 2
        print(f"\nverify: two-core limit {limit:.2f} s = (zstd -dc > /dev/null {zdc.cpu_seconds:.2f} CPU s + sha256 of "
              f"every member {hashing.cpu_seconds:.2f} CPU s) / 2; satchel verify {verify.seconds:.2f} s "
              f"({verify.seconds / limit:.2f}x the limit, {verify.cpu_seconds:.2f} CPU s); "
              f"zstd -dc > /dev/null alone {zdc.seconds:.2f} s")
        customer = disk_mb(managed_roots[-1] / "store", managed_roots[-1] / "registry")
        theirs = disk_mb(layout, registries[-2].root / "data")
        print(f"\ndisk after install: satchel {customer:.0f} MB ({customer / unpacked:.2f}x the unpacked size; "
              f"store + registry, shared inodes counted once), extract + skopeo {theirs:.0f} MB "
              f"({theirs / unpacked:.2f}x)")
        again = med["satchel re-install (nothing to do)"]
        print(f"\nre-install of the installed bundle: {again.seconds:.2f} s")
        print("\npeak RSS (MiB): " + ", ".join(f"{label} {r.peak_mib:.0f}" for label, r in med.items()))
    finally:
        for root in managed_roots:
            ManagedRegistry(root / "registry").stop()
        for reg in registries:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(Path(__file__).parent)
    main()
