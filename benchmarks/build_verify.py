"""Build and verify, Satchel next to the baselines, in one run.

build:  satchel build (registry -> signed bundle), without SBOMs as the baseline makes none,
        then with them
        vs skopeo copy (registry -> OCI layout) + tar | zstd -T0
verify: satchel verify (signature, every member's sha256, tar structure)
        vs zstd -dc | sha256sum, and zstd -dc > /dev/null (decompression alone)

Usage: python benchmarks/build_verify.py [--images N] [--layer-mib M]
Prints seconds, throughput (unpacked MB/s), peak memory and ratios. Never asserts.
"""

from __future__ import annotations

import shutil

from common import SATCHEL, Registry, bench_project, run, setup, table


def main() -> None:
    args, work = setup()
    registry = Registry(work / "registry")
    try:
        project = bench_project(work, registry, args.images, args.layer_mib)
        refs, spec = project.refs, project.spec

        # Baseline build: skopeo into one OCI layout, then tar | zstd -T0.
        layout = work / "skopeo-layout"
        copies = " && ".join(f"skopeo copy --quiet --src-tls-verify=false docker://{r} oci:{layout}:{r.rsplit(':', 1)[1]}"
                             for r in refs)
        skopeo = run("skopeo copy", copies)
        tarzst = run("tar | zstd -T0", f"tar -C {layout} -cf - . | zstd -q -T0 -3 -o {work / 'baseline.tar.zst'}")
        baseline_build = type(skopeo)("skopeo + tar|zstd", skopeo.seconds + tarzst.seconds,
                                      max(skopeo.peak_mib, tarzst.peak_mib))
        bundle = work / "b.bundle"
        build = [*SATCHEL, "-q", "build", str(spec), "-o", str(bundle), "--key", str(work / "k.key"),
                 "--cache", str(work / "cache")]
        satchel_build = run("satchel build", [*build, "--no-sbom"])
        rebuild = run("satchel build (warm cache)", [*build, "--no-sbom"])
        with_sboms = run("satchel build (warm cache, SBOMs)", build)
        unpacked = sum(p.stat().st_size for p in (work / "cache" / "oci" / "blobs" / "sha256").iterdir()) / 1e6

        verify = run("satchel verify", [*SATCHEL, "-q", "verify", str(bundle), "--key", str(work / "k.pub")])
        zsha = run("zstd -dc | sha256sum", f"zstd -dc {bundle} | sha256sum")
        zdc = run("zstd -dc > /dev/null", f"zstd -dc {bundle} > /dev/null")

        print(f"\n{args.images} images, {unpacked:.0f} MB unpacked, bundle {bundle.stat().st_size / 1e6:.0f} MB, "
              f"baseline .tar.zst {(work / 'baseline.tar.zst').stat().st_size / 1e6:.0f} MB\n")
        print("build (higher 'vs baseline' is better)")
        table([("skopeo copy + tar | zstd -T0", baseline_build, unpacked),
               ("  of which skopeo copy", skopeo, unpacked), ("  of which tar | zstd -T0", tarzst, unpacked),
               ("satchel build (cold cache)", satchel_build, unpacked),
               ("satchel build (warm cache)", rebuild, unpacked),
               ("  with an SBOM of each image (Syft)", with_sboms, unpacked)], baseline_build)
        print("\nverify")
        table([("zstd -dc | sha256sum", zsha, unpacked), ("zstd -dc > /dev/null", zdc, unpacked),
               ("satchel verify", verify, unpacked)], zsha)
        print(f"\nsatchel verify runs at {zdc.seconds / verify.seconds:.0%} of zstd -dc throughput "
              f"(target >= 80%)")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
