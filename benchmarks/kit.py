"""The customer kit next to the Python environment, in one run.

size:      the kit file, and what its launcher extracts once into the cache
start-up:  `satchel --version` and `satchel status`: the kit cold (empty cache: the one-time
           extraction), the kit warm, the venv's `satchel`
install:   the example (web + worker, health-checked) on a fresh root, managed registry
           included: kit vs venv, interleaved
glibc:     the floor the build recorded, and the kit run in each --glibc-root DIR (a Debian
           root from debootstrap, say) imported as a container

Usage: python benchmarks/kit.py [--kit FILE] [--runs N] [--glibc-root DIR ...]. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Run, median, run

from bundler.kit import kitfile
from tests.hosts import make_bundle
from tests.infra import docker, free_port
from tests.kitbox import build_kit

VENV_SATCHEL = str(Path(sys.executable).with_name("satchel"))




def env_cmd(env: dict[str, str], argv: list[str]) -> str:
    return " ".join([*(f"{k}={v}" for k, v in env.items()), *map(repr, argv)])


def install_once(work: Path, label: str, satchel: str, bundle: Path, key: Path, i: int) -> Run:
    root = work / f"root-{label}-{i}"
    env = {"SATCHEL_ROOT": str(root), "SATCHEL_REGISTRY_PORT": str(free_port()),
           "SATCHEL_KIT_CACHE": str(work / "cache")}
    project = f"bench-kit-{label}-{i}"
    try:
        return run(f"install ({label})", env_cmd(env, [satchel, "-q", "install", str(bundle), "--key", str(key),
                                                       "--project", project]))
    finally:
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()
        if ids:
            docker("rm", "-f", *ids)
        subprocess.run(["docker", "network", "rm", f"{project}_default"], capture_output=True)
        from installer.tools.registry import ManagedRegistry

        ManagedRegistry(root / "registry").stop()


def glibc_runs(kit: Path, roots: list[Path]) -> list[str]:
    out = []
    for i, root in enumerate(roots):
        image = f"satchel-bench/glibc-root:{i}"
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
        docker("import", "-", image, input=tar)
        version = subprocess.run(["docker", "run", "--rm", image, "ldd", "--version"], capture_output=True,
                                 text=True).stdout.splitlines()[0].split()[-1]
        res = subprocess.run(["docker", "run", "--rm", "-v", f"{kit}:/satchel:ro", image, "/satchel", "--version"],
                             capture_output=True, text=True)
        verdict = "runs" if res.returncode == 0 else f"refused (exit {res.returncode}): {res.stderr.strip()}"
        out.append(f"glibc {version} ({root}): {verdict}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kit", type=Path, default=None, help="a built kit (default: build one now)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--glibc-root", type=Path, action="append", default=[])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="satchel-bench-kit-"))
    try:
        kit = args.kit or build_kit(work / "dist", work / "build")
        meta = kitfile.read_meta(kit)

        def cold(i: int) -> Run:
            return run("kit --version, cold", env_cmd({"SATCHEL_KIT_CACHE": str(work / f"cold-{i}")},
                                                      [str(kit), "--version"]))

        warm_env = {"SATCHEL_KIT_CACHE": str(work / "cache"), "SATCHEL_ROOT": str(work / "empty-root")}
        subprocess.run([kit, "--version"], env={**os.environ, **warm_env}, capture_output=True, check=True)
        rows = [median("kit --version, cold (extracts)", [cold(i) for i in range(args.runs)])]
        for argv in (["--version"], ["status"]):
            for label, program in (("kit", str(kit)), ("venv", VENV_SATCHEL)):
                rows.append(median(f"{label} {argv[0]}, warm", [run("", env_cmd(warm_env, [program, *argv]))
                                                                for _ in range(args.runs * 2)]))
        extracted = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file())

        keys = {"vendor": work / "vendor.key"}
        from signing.keys import SigningKey, write_key_pair

        write_key_pair(SigningKey.generate(), work / "vendor")
        bundle = make_bundle(work / "bundle", "1.0.0", keys)
        installs: dict[str, list[Run]] = {"kit": [], "venv": []}
        for i in range(args.runs):      # interleaved, so drift hits both alike
            for label, program in (("kit", str(kit)), ("venv", VENV_SATCHEL)):
                installs[label].append(install_once(work, label, program, bundle, work / "vendor.pub", i))

        print(f"\nkit {kit.name}: {kit.stat().st_size / 2**20:.1f} MiB file, {extracted / 2**20:.0f} MiB "
              f"extracted once; carries " + ", ".join(f"{k} {v}" for k, v in meta["components"].items() if v))
        print(f"\n{'':36} {'seconds':>8} {'peak MiB':>9}")
        for r in rows:
            print(f"{r.name:36} {r.seconds:8.3f} {r.peak_mib:9.0f}")
        for label, results in installs.items():
            times = ", ".join(f"{r.seconds:.2f}" for r in results)
            print(f"{'install of the example (' + label + ')':36} {statistics.median(r.seconds for r in results):8.2f} "
                  f"{max(r.peak_mib for r in results):9.0f}   runs: {times}")
        print(f"\nglibc floor recorded by the build (newest GLIBC_2.N symbol asked for): {meta['glibc']}")
        for line in glibc_runs(kit, args.glibc_root):
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
