"""The vendor's `requirements:` against what this host has (the judgement is bundler/requirements.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from bundler.errors import SatchelError
from bundler.output import human
from bundler.parts import parse_size
from bundler.requirements import SIZES, Requirement, met

from ..tools import compose
from .model import Context, Result


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _meminfo() -> str | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return str(int(line.split()[1]) * 1024)
    return None


def _selinux() -> str:
    enforce = _read("/sys/fs/selinux/enforce")
    return "disabled" if enforce is None else ("enforcing" if enforce == "1" else "permissive")


def _compose_version(ctx: Context) -> str | None:
    try:
        return compose.version()
    except SatchelError:
        return None


# What the host has, as text, for each requirement name.
FACTS: dict[str, Callable[[Context], str | None]] = {
    "cpus": lambda ctx: str(len(os.sched_getaffinity(0))),
    "memory": lambda ctx: _meminfo(),
    "disk-state": lambda ctx: str(shutil.disk_usage(ctx.state_dir()).free),
    "disk-docker": lambda ctx: str(shutil.disk_usage(ctx.engine["info"]["DockerRootDir"]).free)
    if os.path.isdir(ctx.engine["info"].get("DockerRootDir", "")) else None,
    "docker": lambda ctx: str(ctx.engine["version"].get("Version", "")) or None,
    "compose": _compose_version,
    "kernel": lambda ctx: os.uname().release,
    "cgroup": lambda ctx: str(ctx.engine["info"].get("CgroupVersion", "")) or None,
    "selinux": lambda ctx: _selinux(),
    "apparmor": lambda ctx: "enabled" if _read("/sys/module/apparmor/parameters/enabled") == "Y" else "disabled",
}

FIXES = {
    "cpus": "give the host more CPUs", "memory": "give the host more memory",
    "disk-state": "free space under the state root (satchel store gc, or a larger disk)",
    "disk-docker": "free space in Docker's data directory (docker system prune, or a larger disk)",
    "docker": "upgrade the Docker engine", "compose": "use a newer Satchel kit (it carries Compose)",
    "kernel": "upgrade the kernel", "cgroup": "boot with the cgroup version the vendor supports",
    "selinux": "set SELinux as the vendor requires", "apparmor": "set AppArmor as the vendor requires",
}


def _shown(r: Requirement, value: str | None) -> str:
    if value is None:
        return "nothing (could not be read)"
    return human(int(value)) if r.name in SIZES else value


def check(ctx: Context) -> Iterator[Result]:
    for r in ctx.manifest.requirements:
        if r.name.startswith("sysctl:"):
            key = r.name.split(":", 1)[1]
            found = _read("/proc/sys/" + key.replace(".", "/"))
            fix = f"sysctl -w {key}={r.want} (and in /etc/sysctl.d to keep it)"
        else:
            found, fix = FACTS[r.name](ctx), FIXES[r.name]
        wanted = human(parse_size(r.want)) if r.name in SIZES else r.want
        at_least = r.name not in ("cgroup", "selinux", "apparmor") and (
            not r.name.startswith("sysctl:") or r.want.lstrip("-").isdigit())
        yield Result(r.name, met(r, found), f"{'at least ' if at_least else ''}{wanted}", _shown(r, found), fix,
                     r.level)
