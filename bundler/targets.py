"""The deployment targets a bundle may name: the one list that the spec, the manifest and the
CLI read. Target NAME is implemented on the customer side by installer/targets/NAME.py;
adding a target is that file plus its name here."""

from __future__ import annotations

TARGETS: tuple[str, ...] = ("compose", "helm")


def choose(asked: str | None, declared: str, has_compose: bool, has_charts: bool) -> str:
    """The install's --target, else the bundle's, else from what it carries: charts and no
    compose files go to Helm, everything else to Compose."""
    return asked or declared or ("helm" if has_charts and not has_compose else "compose")
