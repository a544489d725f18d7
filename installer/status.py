"""What this host holds and runs: `satchel status` and `satchel inventory`."""

from __future__ import annotations

from typing import Any

from bundler.delta import inventory_json

from . import releases
from .state import App, Host
from .targets import for_release, staged_target


def app_status(app: App) -> dict[str, Any]:
    """One application: its current release, the services as its target reports them, what
    runs differently from the release (drift), the kept releases, any interrupted operation."""
    current = app.current()
    info: dict[str, Any] = {"app": app.name, "current": current, "releases": releases.installed_versions(app),
                            "pending": app.journal(), "services": [], "drift": []}
    if current and releases.exists(app, current):
        release = releases.load(app, current)
        target = for_release(release)
        info.update(name=release.info.name, project=release.project, registry=release.info.registry,
                    services=target.services(release), drift=target.drift(release))
        if staged := staged_target(release):
            info["switch"] = staged.traffic(release)
    info["health"] = health(info)
    return info


def health(info: dict[str, Any]) -> str:
    """One word for the table: healthy, unhealthy, drift, watching, pending, none (nothing running)."""
    if info["pending"] and info["pending"].get("watch_until"):
        return "watching"
    if info["pending"]:
        return "pending"
    if not info["current"]:
        return "none"
    if info.get("switch") and info["switch"]["proxy"]["state"] != "running":
        return "unhealthy"
    if any(s.get("state") != "running" or s.get("health") not in ("", "healthy", "ready") for s in info["services"]):
        return "unhealthy"
    return "drift" if info["drift"] else "healthy"


def status(host: Host, selected: App | None) -> dict[str, Any]:
    """Every application in a table; the selected one (or the only one) in detail."""
    details = {app.name: app_status(app) for app in host.apps()}
    if selected is not None and selected.name not in details:
        details[selected.name] = app_status(selected)
    doc: dict[str, Any] = {"root": str(host.path), "apps": [
        {"app": name, "current": d["current"], "health": d["health"], "project": d.get("project"),
         "services": len(d["services"]), "drift": len(d["drift"])} for name, d in details.items()]}
    if selected is not None:
        doc.update(details[selected.name])
    elif len(details) == 1:
        doc.update(next(iter(details.values())))
    elif not details:
        doc.update(current=None, releases=[], pending=None, services=[], drift=[])
    return doc


def inventory(host: Host) -> dict[str, Any]:
    """The blobs and healthy releases this host holds (every application), for the vendor's
    `build --delta-from`."""
    blobs = {f"sha256:{p.name}": p.stat().st_size for p in host.store.blobs.glob("[!.]*")}
    kept = [releases.load(app, v) for app in host.apps() for v in releases.installed_versions(app)]
    return inventory_json(blobs, [(r.info.name, r.version) for r in kept])
