"""The managed registry's image: the CNCF Distribution binary and the glibc files it links
against, as a root file system for `docker import`. No base image and nothing to download:
the kit carries this tar; a lab host builds it from its own `docker-registry` package."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import EnvironmentProblem
from ..oci.digest import file_digest, hex_of
from ..reprotar import write_tree

BINARY_IN_IMAGE = "/bin/registry"
CONFIG_IN_IMAGE = "/etc/satchel-registry/config.yml"
DATA_IN_IMAGE = "/var/lib/registry"

_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def host_binary() -> Path:
    found = shutil.which("docker-registry") or shutil.which("registry")
    if not found:
        raise EnvironmentProblem("no registry program: run the Satchel kit, or apt-get install docker-registry, "
                                 "or pass --registry HOST")
    return Path(found)


def linked_files(binary: Path) -> list[Path]:
    """The shared objects the binary loads (ldd), the dynamic loader included."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if "not a dynamic executable" in proc.stdout + proc.stderr:
        return []
    if proc.returncode != 0:
        raise EnvironmentProblem(f"cannot list the libraries of {binary}: {proc.stderr.strip()}")
    return [Path(m.group(1)) for line in proc.stdout.splitlines() if (m := _LDD_LINE.search(line))]


def write_rootfs(binary: Path, libraries: list[Path], out: BinaryIO) -> None:
    """A reproducible tar: the binary, each library at the path the loader looks for it,
    and the empty directories the container mounts over."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        for source, dest in [(binary, BINARY_IN_IMAGE), *((lib, str(lib)) for lib in libraries)]:
            target = tree / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)   # follows symlinks: the image holds real files
            target.chmod(0o755)
        for empty in (Path(CONFIG_IN_IMAGE).parent, Path(DATA_IN_IMAGE), Path("/tmp")):
            (tree / str(empty).lstrip("/")).mkdir(parents=True, exist_ok=True)
        write_tree(tree, out, mtime=0, fmt=tarfile.USTAR_FORMAT)


def tag_for(rootfs: Path) -> str:
    """Image tag named by the rootfs content, so a changed program gets a new image."""
    return f"satchel/registry:{hex_of(file_digest(rootfs))[:16]}"
