"""Shared benchmark helpers: timed runs with peak memory, test images in a real registry."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.images import LayoutWriter, busybox_layer, tar_bytes  # noqa: E402
from tests.infra import Registry  # noqa: E402

SATCHEL = [sys.executable, "-c", "import sys; from installer.cli import main; sys.exit(main(sys.argv[1:]))"]


@dataclass
class Run:
    name: str
    seconds: float
    peak_mib: float
    cpu_seconds: float = 0.0     # user + system, of every process in the command


def run(name: str, cmd: list[str] | str) -> Run:
    """Run a command (a shell pipeline if a string): wall time, CPU time, and peak RSS of the
    largest process in it as GNU time reports it (a fork of this big Python process would
    inherit its high-water mark and mislead)."""
    argv = ["bash", "-c", cmd] if isinstance(cmd, str) else cmd
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", report.name, *argv],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed: {proc.stderr.decode()}")
        peak_kib, user, system = report.read().split()[-3:]
    return Run(name, seconds, int(peak_kib) / 1024, float(user) + float(system))


def median(name: str, runs: list[Run]) -> Run:
    """Medians of several runs of one command; the highest peak."""
    return Run(name, statistics.median(r.seconds for r in runs), max(r.peak_mib for r in runs),
               statistics.median(r.cpu_seconds for r in runs))


def layer_data(mib: int, seed: int) -> bytes:
    """Content that zstd -3 shrinks about 3x, like binaries and text in uncompressed layers."""
    rng = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789_./"
    words = [bytes(rng.choices(alphabet, k=rng.randint(2, 12))) for _ in range(16384)]
    out = bytearray()
    while len(out) < mib << 20:
        out += b" ".join(rng.choices(words, k=4096))
    return bytes(out[: mib << 20])


def make_images(workdir: Path, registry: Registry, images: int, layer_mib: int) -> list[str]:
    """`images` images of a shared busybox layer plus two own layers, pushed with skopeo."""
    layout = LayoutWriter(workdir / "src-layout")
    base = busybox_layer()
    refs = []
    for i in range(images):
        layers = [base] + [tar_bytes({f"data/{i}-{j}.bin": layer_data(layer_mib, i * 10 + j)}, 0o644)
                           for j in range(2)]
        tag = f"bench-{i}"
        layout.tag(layout.image(layers, gz=False), tag)
        registry.push_layout(workdir / "src-layout", tag, f"bench/app{i}")
        refs.append(f"{registry.host}/bench/app{i}:{tag}")
    return refs


def _layer_blob(layout: LayoutWriter, pool: bytes, mib: int, seed: int) -> tuple[dict, str]:
    """A gzip layer of `mib` MiB of files, half random, half text (gzip shrinks it about 1.5x,
    like real layers): its descriptor and diff ID, written in the layout."""
    rng = random.Random(seed)
    files = {}
    for n in range(mib):
        start = rng.randrange(len(pool) - (1 << 19))
        files[f"data/{seed}/{n}.bin"] = os.urandom(1 << 19) + pool[start:start + (1 << 19)]
    plain = tar_bytes(files, 0o644)
    packed = zlib.compressobj(1, wbits=31)
    blob = packed.compress(plain) + packed.flush()
    return layout.blob(blob, "application/vnd.oci.image.layer.v1.tar+gzip"), \
        "sha256:" + hashlib.sha256(plain).hexdigest()


def make_large_layout(workdir: Path, images: int, layers: int, layer_mib: int) -> list[str]:
    """`images` images of `layers` gzip layers each, in one OCI layout: three base layers of
    2x`layer_mib` shared by all, the rest each image's own. Returns the tags."""
    layout = LayoutWriter(workdir / "src-layout")
    pool = layer_data(8, 0)
    base = [_layer_blob(layout, pool, 2 * layer_mib, 1000 + j) for j in range(3)]
    refs = []
    for i in range(images):
        own = [_layer_blob(layout, pool, layer_mib, i * 100 + j) for j in range(layers - len(base))]
        descs = base + own
        config = {"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": [d for _, d in descs]},
                  "config": {"Cmd": ["/bin/sh"]}}
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": layout.blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
                    "layers": [d for d, _ in descs]}
        tag = f"big-{i}"
        layout.tag(layout.blob(json.dumps(manifest).encode(), manifest["mediaType"]), tag)
        refs.append(tag)
    return refs


@dataclass
class Project:
    work: Path
    refs: list[str]
    spec: Path              # satchel.yaml naming every image
    key: Path               # private key; the public one is beside it (.pub)


def bench_project(work: Path, registry: Registry, images: int, layer_mib: int) -> Project:
    """Images in `registry`, a spec naming them, and a signing key."""
    from signing.keys import SigningKey, write_key_pair

    refs = make_images(work, registry, images, layer_mib)
    write_key_pair(SigningKey.generate(), work / "k")
    spec = work / "satchel.yaml"
    spec.write_text("name: bench\nversion: 1.0.0\nimages:\n" + "".join(f"  - {r}\n" for r in refs))
    return Project(work, refs, spec, work / "k.key")


def setup(more: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[argparse.Namespace, Path]:
    """Command-line options shared by the benchmarks (and `more` of one's own), and a fresh
    work directory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--layer-mib", type=int, default=64)
    if more:
        more(parser)
    return parser.parse_args(), Path(tempfile.mkdtemp(prefix="satchel-bench-"))


def table(rows: list[tuple[str, Run, float]], baseline: Run) -> None:
    print(f"{'':34} {'seconds':>8} {'MB/s':>8} {'peak MiB':>9} {'vs baseline':>12}")
    for label, r, mb in rows:
        print(f"{label:34} {r.seconds:8.2f} {mb / r.seconds:8.0f} {r.peak_mib:9.0f} "
              f"{baseline.seconds / r.seconds:11.2f}x")


