"""Collectors: each gathers files and facts for one area and may fail on its own; a
failure is recorded with its reason and the rest goes on (a broken host is when this
matters most). Nothing here redacts: the archive writer does, for every file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bundler import __version__ as satchel_version
from bundler import sbom
from bundler.errors import SatchelError
from bundler.format import MANIFEST, SIGNATURES
from bundler.manifest import parse_manifest
from bundler.oci.digest import copy_hashed
from bundler.oci.refs import Reference
from bundler.oci.registry import Endpoint, RegistryClient
from bundler.tools import docker
from signing import envelope
from signing.grammar import utc_stamp
from signing.keys import load_verify_key

from .. import releases, snapshots
from ..config import SiteConfig
from ..state import App, Host
from ..targets import for_release
from ..tools.registry import ManagedRegistry
from .redact import Redactor


@dataclass
class Collection:
    files: dict[str, str] = field(default_factory=dict)      # archive path -> text
    facts: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    redactor: Redactor = field(default_factory=Redactor)

    def add_json(self, path: str, data: Any) -> None:
        self.files[path] = json.dumps(data, indent=2, sort_keys=True, default=str)

    def run(self, name: str, collector: Callable[[Collection], None]) -> None:
        try:
            collector(self)
        except SatchelError as exc:    # our own one-line message says it all
            self.errors.append({"collector": name, "error": str(exc).splitlines()[0],
                                "where": traceback.extract_tb(exc.__traceback__)[-1].name})
        except Exception as exc:       # a bug or a library's surprise: its kind helps the vendor
            self.errors.append({"collector": name, "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                                "where": traceback.extract_tb(exc.__traceback__)[-1].name})


def satchel_state(host: Host, app: App | None, since: datetime | None) -> Callable[[Collection], None]:
    def collect(c: Collection) -> None:
        state: dict[str, Any] = {"satchel_version": satchel_version, "root": str(host.path),
                                 "exists": host.path.is_dir(),
                                 "app": app.name if app else None, "apps": [a.name for a in host.apps()],
                                 "current": app.current() if app else None, "journal": app.journal() if app else None,
                                 "releases": {}, "state_errors": []}
        c.facts["satchel"] = state
        if not host.path.is_dir():
            return
        for name, events in (("host-history", host), ("history", app)):
            history_text = events.history_file.read_text(errors="replace") if events and \
                events.history_file.exists() else ""
            c.files[f"satchel/{name}.jsonl"] = history_text
            bad = sum(1 for line in history_text.splitlines() if line.strip() and not _is_json(line))
            if bad:
                state["state_errors"].append(f"{name} has {bad} unreadable line(s)")
        state["history"] = app.history() if app else []
        state["trusted_keys"] = [load_verify_key(p).keyid for p in sorted(host.trust.glob("*.pub"))]
        for log in sorted((host.path / "logs").glob("*.log")):
            if since is None or datetime.fromtimestamp(log.stat().st_mtime, UTC) >= since:
                c.files[f"satchel/logs/{log.name}"] = log.read_text(errors="replace")
        if app is not None:
            _app_state(c, app, state)
        c.add_json("satchel/state.json", state)

    return collect


def _app_state(c: Collection, app: App, state: dict[str, Any]) -> None:
    """Every release of the application (release.json and rendered files), its rollback reports
    and the list of its data snapshots (not their contents: they are the customer's data)."""
    for rel in sorted(app.releases.glob("[!.]*")) if app.releases.is_dir() else []:
        entry: dict[str, Any] = {}
        state["releases"][rel.name] = entry
        for f in sorted(p for p in rel.rglob("*") if p.is_file()):
            c.files[f"satchel/releases/{rel.name}/{f.relative_to(rel)}"] = f.read_text(errors="replace")
        try:
            entry["info"] = json.loads((rel / "release.json").read_text())
            manifest_bytes = (rel / MANIFEST).read_bytes()
            manifest = parse_manifest(manifest_bytes)
            entry["created"] = manifest.created
            entry["secrets"] = list(manifest.secrets)
            entry["manifest_digest"] = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
            entry["signers"] = [sig.keyid for sig in envelope.parse((rel / SIGNATURES).read_bytes())]
        except (OSError, ValueError) as exc:
            state["state_errors"].append(f"release {rel.name} is unreadable: {exc}")
    for report in sorted(app.reports.glob("*.txt")):
        c.files[f"satchel/reports/{report.name}"] = report.read_text(errors="replace")
    try:
        state["snapshots"] = [s.to_json() for s in snapshots.listed(app)]
    except SatchelError as exc:
        state["state_errors"].append(f"snapshots are unreadable: {exc}")


def for_current(app: App | None, body: Callable[[Collection, App, releases.Release], None]
                ) -> Callable[[Collection], None]:
    """A collector about the current release; nothing to collect when there is none."""

    def collect(c: Collection) -> None:
        current = app.current() if app else None
        if app and current:
            body(c, app, releases.load(app, current))

    return collect


def store_check(c: Collection, app: App, release: releases.Release) -> None:
    """Re-hash every blob the current release needs: the verification result support sees."""
    store = app.store
    ok, missing, corrupt = 0, [], []
    for expected, expected_size in release.manifest().all_blobs.items():
        path = store.blobs / expected[7:]
        if not path.exists():
            missing.append(expected)
            continue
        with path.open("rb") as fh:
            digest, size = copy_hashed(fh, None)
        if (digest, size) != (expected, expected_size):
            corrupt.append(expected)
        else:
            ok += 1
    results = {"ok": ok, "missing": missing, "corrupt": corrupt}
    c.facts["store"] = results
    c.add_json("satchel/store-verification.json", results)


def host_facts(host: Host) -> Callable[[Collection], None]:
    def collect(c: Collection) -> None:
        uname = platform.uname()
        facts: dict[str, Any] = {"system": uname.system, "release": uname.release, "machine": uname.machine,
                                 "hostname": uname.node, "cpus": os.cpu_count(),
                                 "clock_utc": utc_stamp()}
        for name, path in (("os_release", "/etc/os-release"), ("meminfo", "/proc/meminfo"),
                           ("loadavg", "/proc/loadavg")):
            try:
                c.files[f"host/{Path(path).name}"] = Path(path).read_text()
            except OSError as exc:
                facts[f"{name}_error"] = str(exc)
        meminfo = c.files.get("host/meminfo", "")
        facts["memory_kib"] = {line.split(":")[0]: int(line.split()[1]) for line in meminfo.splitlines()
                               if line.startswith(("MemTotal", "MemAvailable"))}
        facts["disks"] = {"satchel_root": _disk(host.path if host.path.exists() else host.path.parent)}
        c.facts["host"] = facts
        c.add_json("host/facts.json", facts)

    return collect


def docker_facts() -> Callable[[Collection], None]:
    def collect(c: Collection) -> None:
        report = docker.engine_report()
        c.add_json("docker/version.json", report["version"])
        c.add_json("docker/info.json", report["info"])
        data_dir = report["info"].get("DockerRootDir")
        if data_dir and Path(data_dir).exists():
            c.facts.setdefault("host", {}).setdefault("disks", {})["docker_data"] = _disk(Path(data_dir))

    return collect


def workload_facts(since: datetime | None) -> Callable[[Collection, App, releases.Release], None]:
    """What the current release runs, as its target sees it (containers, pods), their logs,
    and what runs differently from the release (drift)."""

    def collect(c: Collection, app: App, release: releases.Release) -> None:
        target = for_release(release)
        target.collect(release, c, since)
        c.facts["drift"] = target.drift(release)
        c.add_json("satchel/drift.json", c.facts["drift"])

    return collect


def sbom_facts(c: Collection, app: App, release: releases.Release) -> None:
    """The packages of each image of the current release, from the SBOMs it brought into the store."""
    listed = []
    for s in release.manifest().sboms:
        blob = app.host.store.blobs / s.digest.split(":", 1)[1]
        packages = sbom.packages(blob.read_bytes()) if blob.is_file() else []
        listed.append({**s.to_json(), "stored": blob.is_file(), "packages": len(packages)})
        c.add_json(f"sbom/{s.digest.split(':', 1)[1][:16]}.json", {**s.to_json(), "packages": packages})
    c.facts["sboms"] = listed


def registry_facts(c: Collection, app: App, release: releases.Release) -> None:
    client = RegistryClient(Endpoint(release.info.registry, attempts=2, timeout=10))
    facts: dict[str, Any] = {"host": release.info.registry, "reachable": True, "images": [], "missing": []}
    c.facts["registry"] = facts
    managed = ManagedRegistry(app.host.registry_dir)
    if managed.host == release.info.registry:
        with contextlib.suppress(SatchelError):     # Docker down: the docker collector says so
            facts["container"] = {"name": managed.container, "state": docker.container_state(managed.container)}
            c.files["registry/container.log"] = docker.container_logs(managed.container, lines=200)
    try:
        client.request("GET", "/v2/", "", what="the API root")
    except Exception as exc:
        facts["reachable"] = False
        facts["error"] = str(exc)
        c.add_json("registry/report.json", facts)
        return
    for image in release.manifest().images:
        repo = Reference.parse(image.ref).repository
        present = [d for d in image.blobs if _present(client, repo, d, d == image.digest)]
        facts["images"].append({"ref": image.ref, "repository": repo, "tags": _tags(client, repo),
                                "needed": len(image.blobs), "present": len(present)})
        facts["missing"] += [f"{repo}@{d}" for d in image.blobs if d not in present]
    c.add_json("registry/report.json", facts)


def _present(client: RegistryClient, repo: str, digest: str, is_root: bool) -> bool:
    try:
        if is_root:
            client.get_manifest(repo, digest)
            return True
        return client.has_blob(repo, digest)
    except Exception:
        return False


def _tags(client: RegistryClient, repo: str) -> list[str]:
    try:
        return client.tags(repo)
    except Exception:
        return []


def _disk(path: Path) -> dict[str, int]:
    usage = shutil.disk_usage(path)
    return {"total": usage.total, "used": usage.used, "free": usage.free}


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def learn_secrets(redactor: Redactor, app: App) -> None:
    """Secret values the redactor hides wherever they appear, even with no container left to
    show them: the secret store, and each release's settings the vendor marked secret or that
    look secret. A damaged file must not stop the collection."""
    with contextlib.suppress(Exception):
        for value in SiteConfig(app).secrets().values():
            redactor.add_literal(value)
    for rel in app.releases.glob("[!.]*"):
        with contextlib.suppress(Exception):
            release = releases.load(app, rel.name)
            manifest = release.manifest()
            marked = set(manifest.secrets) | {s.name for s in manifest.settings if s.secret}
            redactor.add_env([f"{k}={v}" for k, v in release.settings().items()], marked)


def collect_all(host: Host, app: App | None, since: timedelta | None, redact: list[str]) -> Collection:
    """Everything about the host, and about `app` (None: a host with no application)."""
    c = Collection(redactor=Redactor(redact))
    for other in host.apps():
        learn_secrets(c.redactor, other)
    cutoff = datetime.now(UTC) - since if since else None
    c.facts.update(collected_at=utc_stamp(), containers=[])
    for name, collector in (("satchel", satchel_state(host, app, cutoff)), ("store", for_current(app, store_check)),
                            ("host", host_facts(host)), ("docker", docker_facts()),
                            ("workload", for_current(app, workload_facts(cutoff))),
                            ("registry", for_current(app, registry_facts)),
                            ("sbom", for_current(app, sbom_facts))):
        c.run(name, collector)
    return c
