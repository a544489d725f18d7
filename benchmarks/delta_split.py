"""Deltas and parts, measured in one run.

- sizes: full bundle of version 2 vs its delta against version 1 vs the layers that really
  changed, for an image with a large shared base layer and a small changed app layer;
- install time into a registry from one file vs from parts on the same disk.

Usage: python benchmarks/delta_split.py [--images N] [--layer-mib M]  (M = base layer size). Never asserts.
"""

from __future__ import annotations

import shutil
import subprocess

from common import SATCHEL, Registry, layer_data, run, setup

from signing.keys import SigningKey, write_key_pair
from tests.images import LayoutWriter, busybox_layer, tar_bytes


def main() -> None:
    args, work = setup()
    try:
        layout = LayoutWriter(work / "layout")
        bases = [tar_bytes({f"base/{i}.bin": layer_data(args.layer_mib, i)}, 0o644) for i in range(args.images)]
        changed = 0
        for version in ("1.0.0", "2.0.0"):
            for i, base in enumerate(bases):
                app = tar_bytes({"app/build.txt": layer_data(1, 1000 * i + int(version[0]))}, 0o644)
                layout.tag(layout.image([busybox_layer(), base, app], gz=False), f"acme/app{i}:{version}")
                changed += len(app) if version == "2.0.0" else 0
        write_key_pair(SigningKey.generate(), work / "k")
        for version in ("1.0.0", "2.0.0"):
            d = work / version
            d.mkdir()
            (d / "satchel.yaml").write_text(f"name: big\nversion: {version}\nimages:\n" + "".join(
                f"  - ref: acme/app{i}:{version}\n    source: oci:{work / 'layout'}\n" for i in range(args.images)))
        build = [*SATCHEL, "-q", "build", "--key", str(work / "k.key"), "--cache", str(work / "cache")]
        for version in ("1.0.0", "2.0.0"):
            subprocess.run([*build, str(work / version / "satchel.yaml"), "-o", str(work / f"{version}.bundle")],
                           check=True)
        subprocess.run([*build, str(work / "2.0.0" / "satchel.yaml"), "-o", str(work / "delta.bundle"),
                        "--delta-from", str(work / "1.0.0.bundle")], check=True)
        full, delta = (work / "2.0.0.bundle").stat().st_size, (work / "delta.bundle").stat().st_size
        print(f"\n{args.images} image(s), base layer {args.layer_mib} MiB each, app layer 1 MiB each")
        print(f"full bundle 2.0.0         {full / 1e6:9.1f} MB")
        print(f"delta 1.0.0 -> 2.0.0      {delta / 1e6:9.1f} MB  ({delta / full:.1%} of full)")
        print(f"layers that changed       {changed / 1e6:9.1f} MB uncompressed")

        subprocess.run([*SATCHEL, "split", str(work / "2.0.0.bundle"), "--size", "64M", "--key",
                        str(work / "k.key"), "-o", str(work / "parts")], check=True, capture_output=True)
        first = sorted((work / "parts").glob("*.0*"))[0]
        results = []
        sources = (("install from one file", work / "2.0.0.bundle"), ("install from parts", first)) * 2
        for label, source in sources:  # alternated, each into a fresh root and a fresh registry
            target = Registry(work / f"registry-{len(results)}")
            try:
                cmd = (f"SATCHEL_ROOT={work / f'root-{len(results)}'} " + " ".join(repr(a) for a in SATCHEL)
                       + f" -q install {source} --key {work / 'k.pub'} --registry {target.host}")
                results.append(run(label, cmd))
            finally:
                target.stop()
        for r in results:
            print(f"{r.name:26}{r.seconds:9.2f} s  peak {r.peak_mib:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
