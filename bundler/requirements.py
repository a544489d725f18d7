"""What the vendor says a host needs (`requirements:` in satchel.yaml, signed with the manifest),
and the judgement of what a host has against it. Pure: installer/preflight/ reads the host.

    requirements:
      cpus: 2
      memory: 4G                 # sizes: bytes or K, M, G, T (powers of 1024)
      disk-state: 10G            # free under Satchel's state root
      disk-docker: 20G           # free under Docker's data directory
      docker: "24.0"             # the engine's version, at least
      compose: "2.20"
      kernel: "5.10"
      cgroup: 2                  # exactly
      selinux: enforcing         # enforcing | permissive | disabled
      apparmor: enabled          # enabled | disabled
      sysctl: {vm.max_map_count: 262144}   # at least, for a number; exactly otherwise
      memory: {want: 4G, level: warn}      # any of them: warn prints and goes on (default: strict)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import SpecError
from .parts import parse_size

LEVELS = ("strict", "warn")
SIZES = ("memory", "disk-state", "disk-docker")
VERSIONS = ("docker", "compose", "kernel")
CHOICES = {"cgroup": ("1", "2"), "selinux": ("enforcing", "permissive", "disabled"),
           "apparmor": ("enabled", "disabled")}
NAMES = ("cpus", *SIZES, *VERSIONS, *CHOICES, "sysctl")
_SYSCTL = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+)+")


@dataclass(frozen=True)
class Requirement:
    name: str                   # cpus, memory, ..., or sysctl:KEY
    want: str                   # as the vendor wrote it, normalised to text
    level: str = "strict"

    def to_json(self) -> Any:
        return self.want if self.level == "strict" else {"want": self.want, "level": self.level}


def parse(doc: Any, where: str = "requirements") -> tuple[Requirement, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        raise SpecError(f"{where}: expected a mapping (cpus, memory, disk-state, ...)")
    out = []
    for name, value in doc.items():
        if name not in NAMES:
            raise SpecError(f"{where}: unknown requirement {name!r} (known: {', '.join(NAMES)})")
        if name == "sysctl":
            if not isinstance(value, dict):
                raise SpecError(f"{where}.sysctl: expected a mapping of kernel parameter: value")
            for key, v in value.items():
                if not isinstance(key, str) or not _SYSCTL.fullmatch(key):
                    raise SpecError(f"{where}.sysctl: {key!r} is not a kernel parameter like vm.max_map_count")
                out.append(_one(f"sysctl:{key}", v, f"{where}.sysctl.{key}"))
        else:
            out.append(_one(name, value, f"{where}.{name}"))
    return tuple(out)


def _one(name: str, value: Any, where: str) -> Requirement:
    level = "strict"
    if isinstance(value, dict):
        unknown = set(value) - {"want", "level"}
        if unknown or "want" not in value:
            raise SpecError(f"{where}: expected a value, or {{want: VALUE, level: strict|warn}}")
        level, value = value.get("level", "strict"), value["want"]
        if level not in LEVELS:
            raise SpecError(f"{where}.level: {level!r} (choose strict or warn)")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(f"{where}: expected a number or a string")
    want = str(value)
    if name == "cpus" and not (want.isdigit() and int(want) > 0):
        raise SpecError(f"{where}: expected a whole number of CPUs")
    if name in SIZES:
        parse_size(want)
    if name in VERSIONS and not re.fullmatch(r"\d+(\.\d+){0,2}", want):
        raise SpecError(f"{where}: expected a version like 24.0")
    if name in CHOICES and want not in CHOICES[name]:
        raise SpecError(f"{where}: {want!r} (choose {', '.join(CHOICES[name])})")
    return Requirement(name, want, level)


def to_json(requirements: tuple[Requirement, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in requirements:
        if r.name.startswith("sysctl:"):
            out.setdefault("sysctl", {})[r.name.split(":", 1)[1]] = r.to_json()
        else:
            out[r.name] = r.to_json()
    return out


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def met(requirement: Requirement, found: str | None) -> bool:
    """Does what the host has (as text; None: could not be read) satisfy the requirement?"""
    if found is None:
        return False
    name, want = requirement.name, requirement.want
    if name == "cpus":
        return int(found) >= int(want)
    if name in SIZES:
        return int(found) >= parse_size(want)
    if name in VERSIONS:
        return bool(_version(found)) and _version(found) >= _version(want)
    if name.startswith("sysctl:") and want.lstrip("-").isdigit() and found.strip().lstrip("-").isdigit():
        return int(found) >= int(want)
    return " ".join(found.split()) == " ".join(want.split())
