"""Deployment targets behind one small protocol: render a release, apply it and wait for
health, stop it, and report its services. `for_release` picks the one a release names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..releases import Release


class Target(Protocol):
    def apply(self, release: Release, wait_timeout: int) -> tuple[bool, str]: ...

    def stop(self, release: Release) -> None: ...

    def services(self, release: Release) -> list[dict[str, Any]]: ...


def for_release(release: Release) -> Target:
    from .compose import COMPOSE
    from .helm import HELM

    return HELM if release.info.get("target") == "helm" else COMPOSE
