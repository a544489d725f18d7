"""Image references, normalised the way Docker does (`busybox` -> docker.io/library/busybox:latest)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from signing.grammar import DIGEST

from ..errors import SpecError

DOCKER_HUB = "docker.io"
_PATH = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")


@dataclass(frozen=True, order=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not DIGEST.fullmatch(digest):
                raise SpecError(f"image reference {text!r}: bad digest {digest!r}")
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.fullmatch(tag):
                raise SpecError(f"image reference {text!r}: bad tag {tag!r}")
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            registry, path = first, remainder
            if not _DOMAIN.fullmatch(registry):
                raise SpecError(f"image reference {text!r}: bad registry {registry!r}")
        else:
            registry, path = DOCKER_HUB, rest
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if not _PATH.fullmatch(path):
            raise SpecError(f"image reference {text!r}: bad repository name {path!r}")
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, path, tag, digest)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
