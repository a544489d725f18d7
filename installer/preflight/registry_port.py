"""The managed registry's port is free, or Satchel's own registry answers on it."""

from __future__ import annotations

from collections.abc import Iterator

from ..tools.registry import ManagedRegistry
from .model import Context, Result


def check(ctx: Context) -> Iterator[Result]:
    if not ctx.managed_registry:
        return
    registry = ManagedRegistry(ctx.host.registry_dir)
    seen = "ours" if (registry.dir / "pid").exists() else registry.probe()
    found = {"ours": "Satchel's registry of this root", "absent": "free"}.get(seen, "something Satchel did not start")
    yield Result(f"registry port {registry.port}", seen != "foreign", "free or this root's registry", found,
                 "stop what holds it, or give Satchel's registry another port with SATCHEL_REGISTRY_PORT=PORT")
