"""A customer host as it really is, for the kit's tests: a container whose root file system
holds busybox, glibc and /etc/os-release and nothing else (no Python, no pip, no package
manager, no registry program), with the host's Docker socket, the host network and the test directories mounted at
the same paths. Satchel runs in it only through the kit."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.images import BUSYBOX
from tests.infra import docker, docker_available

REPO = Path(__file__).resolve().parents[1]
BARE_IMAGE = "satchel-test/bare-host:1"
FORBIDDEN = re.compile(r"(^|/)(python[0-9.]*|pip[0-9.]*|apt|apt-get|dpkg|rpm|yum|dnf|docker-registry|registry)$")


def build_kit(out: Path, work: Path, key: Path | None = None) -> Path:
    """scripts/build-kit.sh, as a vendor runs it: SHA256SUMS signed with `key`, whose public
    half (KEY.pub beside it) the kit trusts on a fresh host."""
    cmd = ["bash", str(REPO / "scripts" / "build-kit.sh"), "--out", str(out), "--work", str(work)]
    if key:
        cmd += ["--key", str(key), "--trust", str(key.with_suffix(".pub"))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (kit,) = out.glob("satchel-*-linux-amd64")
    return kit


def glibc_files() -> list[Path]:
    """The files of Debian's libc6 package: glibc and nothing more."""
    listed = subprocess.run(["dpkg", "-L", "libc6"], capture_output=True, text=True, check=True).stdout.split()
    return [Path(p) for p in listed if not p.startswith("/usr/share") and Path(p).is_file()]


def bare_rootfs() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory in ("tmp", "root", "var/cache", "etc"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        # Real files only (Debian's links resolved), the dynamic loader at the path every glibc
        # program names among them.
        files = {str(p).lstrip("/"): p for p in [*glibc_files(), Path("/lib64/ld-linux-x86-64.so.2")]}
        files.update({"bin/busybox": BUSYBOX, "bin/sh": BUSYBOX, "etc/os-release": Path("/etc/os-release")})
        for name, source in sorted(files.items()):
            tar.add(os.path.realpath(source), arcname=name)
    return buf.getvalue()


def bare_image() -> str:
    docker_available()
    data = bare_rootfs()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        bad = [m.name for m in tar if FORBIDDEN.search(m.name)]
    assert not bad, bad
    docker("import", "-", BARE_IMAGE, input=data)
    return BARE_IMAGE


@dataclass
class KitBox:
    """One long-lived bare container; each command is a `docker exec` of the kit in it."""

    kit: Path
    name: str

    @classmethod
    def start(cls, kit: Path, shared: Path, name: str) -> KitBox:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        docker("run", "-d", "--name", name, "--network", "host",
               "-v", "/var/run/docker.sock:/var/run/docker.sock",
               "-v", f"{shared}:{shared}", bare_image(), "/bin/busybox", "sleep", "86400")
        return cls(kit, name)

    def run(self, args: list[str], env: dict[str, str], input: str | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        cmd = ["docker", "exec", "-i", "-e", "HOME=/root"]
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        return subprocess.run([*cmd, self.name, str(self.kit), *args], capture_output=True, text=True,
                              input=input, timeout=timeout)

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)
