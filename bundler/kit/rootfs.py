"""Images of the programs Satchel runs as containers (the managed registry, the blue-green front
proxy): the program and the glibc files it links against, as a root file system for
`docker import`. No base image and nothing to download: the kit carries these tars; a lab host
builds them from its own packages (`docker-registry`, `haproxy`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import EnvironmentProblem
from ..oci.digest import file_digest, hex_of
from ..reprotar import write_tree

_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


@dataclass(frozen=True)
class Program:
    name: str                       # the image's repository (satchel/NAME) and the kit's NAME-rootfs.tar
    commands: tuple[str, ...]       # what the host package installs, first found wins
    package: str                    # the Debian package that has it
    binary: str                     # where the program sits in the image
    empty: tuple[str, ...]          # directories the container mounts over or writes to

    @property
    def tar_name(self) -> str:
        return f"{self.name}-rootfs.tar"

    def host_binary(self) -> Path:
        for command in self.commands:
            if found := shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin"):
                return Path(found)
        raise EnvironmentProblem(f"no {self.name} program: run the Satchel kit, or apt-get install {self.package}")

    def write(self, out: BinaryIO) -> None:
        """The rootfs from the host's program."""
        binary = self.host_binary()
        write_rootfs(self, binary, linked_files(binary), out)

    def tag_for(self, rootfs: Path) -> str:
        """Image tag named by the rootfs content, so a changed program gets a new image."""
        return f"satchel/{self.name}:{hex_of(file_digest(rootfs))[:16]}"


REGISTRY = Program("registry", ("docker-registry", "registry"), "docker-registry", "/bin/registry",
                   ("/etc/satchel-registry", "/var/lib/registry", "/tmp"))
PROXY = Program("proxy", ("haproxy",), "haproxy", "/bin/haproxy", ("/etc/satchel-proxy", "/run/satchel-proxy", "/tmp"))
PROGRAMS = (REGISTRY, PROXY)


def linked_files(binary: Path) -> list[Path]:
    """The shared objects the binary loads (ldd), the dynamic loader included."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if "not a dynamic executable" in proc.stdout + proc.stderr:
        return []
    if proc.returncode != 0:
        raise EnvironmentProblem(f"cannot list the libraries of {binary}: {proc.stderr.strip()}")
    return [Path(m.group(1)) for line in proc.stdout.splitlines() if (m := _LDD_LINE.search(line))]


def write_rootfs(program: Program, binary: Path, libraries: list[Path], out: BinaryIO) -> None:
    """A reproducible tar: the binary, each library at the path the loader looks for it,
    and the empty directories the container mounts over."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        for source, dest in [(binary, program.binary), *((lib, str(lib)) for lib in libraries)]:
            target = tree / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)   # follows symlinks: the image holds real files
            target.chmod(0o755)
        for empty in program.empty:
            (tree / empty.lstrip("/")).mkdir(parents=True, exist_ok=True)
        write_tree(tree, out, mtime=0, fmt=tarfile.USTAR_FORMAT)


def ensure_image(program: Program) -> str:
    """The program's image in the engine: from the kit's rootfs, or built from the host's package."""
    from ..tools import docker
    from .runtime import tool

    carried = tool(program.tar_name)
    if carried:
        tag = program.tag_for(carried)
        docker.import_image(tag, carried)
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / program.tar_name
        with built.open("wb") as fh:
            program.write(fh)
        tag = program.tag_for(built)
        docker.import_image(tag, built)
    return tag
