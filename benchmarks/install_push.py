"""Install-side benchmark, Satchel next to skopeo in one run.

push:      satchel install (verify + stage + push by digest into a fresh registry)
           vs zstd -dc | tar -x, then skopeo copy oci:... docker://... --preserve-digests
           into another fresh registry (skopeo gets the layout already verified by nobody)
managed:   satchel install into its managed registry (zero-copy: hard links into the
           registry's storage), with satchel verify alone next to it, and the disk used on
           the customer's side (store + registry, a hard-linked file counted once)
re-install: satchel install of the installed bundle (the no-op path)

Usage: python benchmarks/install_push.py [--images N] [--layer-mib M]. Never asserts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from common import SATCHEL, Registry, bench_project, run, setup, table

from tests.infra import free_port


def disk_mb(*paths: Path) -> float:
    """Bytes on disk under the paths, a file with several names counted once (one du call)."""
    out = subprocess.run(["du", "-s", "--block-size=1", "-c", *map(str, paths)], check=True, capture_output=True,
                         text=True).stdout
    return int(out.splitlines()[-1].split()[0]) / 1e6


def main() -> None:
    args, work = setup()
    registries = [Registry(work / name) for name in ("vendor", "satchel-dest", "skopeo-dest")]
    vendor, dest, skopeo_dest = registries
    try:
        project = bench_project(work, vendor, args.images, args.layer_mib)
        refs, spec = project.refs, project.spec
        bundle = work / "b.bundle"
        subprocess.run([*SATCHEL, "-q", "build", str(spec), "-o", str(bundle), "--key", str(work / "k.key"),
                        "--cache", str(work / "cache")], check=True)
        unpacked = json.loads(subprocess.run([*SATCHEL, "inspect", str(bundle), "--json"], check=True,
                                             capture_output=True, text=True).stdout)["deduped_size"] / 1e6

        env = f"SATCHEL_ROOT={work / 'root'}"
        install = [*SATCHEL, "-q", "install", str(bundle), "--key", str(work / "k.pub"), "--registry", dest.host]
        satchel = run("satchel install", f"{env} " + " ".join(map(repr, install)))
        again = run("satchel re-install", f"{env} " + " ".join(map(repr, install)))

        layout = work / "extracted"
        layout.mkdir()
        extract = run("zstd -dc | tar -x", f"zstd -dc {bundle} | tar -x -C {layout}")
        copies = " && ".join(
            f"skopeo copy --quiet --preserve-digests --dest-tls-verify=false "
            f"oci:{layout}:{r} docker://{skopeo_dest.host}/{r.split('/', 1)[1]}" for r in refs)
        skopeo = run("skopeo copy --preserve-digests", copies)
        baseline = type(skopeo)("extract + skopeo", extract.seconds + skopeo.seconds,
                                max(extract.peak_mib, skopeo.peak_mib))

        verify = run("satchel verify", [*SATCHEL, "-q", "verify", str(bundle), "--key", str(work / "k.pub")])
        managed_root = work / "root-managed"
        managed_env = f"SATCHEL_ROOT={managed_root} SATCHEL_REGISTRY_PORT={free_port()}"
        managed = run("satchel install (managed)", f"{managed_env} " + " ".join(
            map(repr, [*SATCHEL, "-q", "install", str(bundle), "--key", str(work / "k.pub")])))

        print(f"\n{args.images} images, {unpacked:.0f} MB unpacked\n")
        print("verify + load into a registry (higher 'vs baseline' is better)")
        table([("zstd -dc | tar -x + skopeo copy", baseline, unpacked),
               ("  of which zstd -dc | tar -x", extract, unpacked),
               ("  of which skopeo copy", skopeo, unpacked),
               ("satchel verify (alone)", verify, unpacked),
               ("satchel install (verify+stage+push)", satchel, unpacked),
               ("satchel install, managed zero-copy", managed, unpacked)], baseline)
        customer = disk_mb(managed_root / "store", managed_root / "registry")
        theirs = disk_mb(layout, skopeo_dest.root / "data")
        print(f"\ndisk after install: satchel {customer:.0f} MB ({customer / unpacked:.2f}x the unpacked size; "
              f"store + registry, shared inodes counted once), extract + skopeo {theirs:.0f} MB "
              f"({theirs / unpacked:.2f}x)")
        print(f"\nre-install of the installed bundle: {again.seconds:.2f} s, peak {again.peak_mib:.0f} MiB")
    finally:
        from installer.tools.registry import ManagedRegistry

        ManagedRegistry(work / "root-managed" / "registry").stop()
        for reg in registries:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(Path(__file__).parent)
    main()
