"""Release directories: written completely under a temporary name, then renamed; kept or
collected by retention; read back for status, rollback and retention."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bundler.errors import EnvironmentProblem
from bundler.format import MANIFEST, SIGNATURES
from bundler.manifest import BundleManifest, parse_manifest
from bundler.oci.layout import fsync_dir, write_atomic
from bundler.switching import Port

from . import faults
from .state import App


def _fields(doc: Any, where: str, required: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ValueError(f"{where} is not an object")
    missing, unknown = required - set(doc), set(doc) - required - optional
    if missing or unknown:
        problems = [f"{kind} {', '.join(sorted(keys))}" for kind, keys in (("missing", missing), ("unknown", unknown))
                    if keys]
        raise ValueError(f"{where}: {'; '.join(problems)}")
    return doc


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} is not a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class HelmChartInfo:
    name: str
    version: str
    release: str                      # the Helm release name
    rendered: str                     # the rendered manifests, relative to the release directory


@dataclass(frozen=True)
class HelmInfo:
    """How the Helm target applies a release: everything `helm upgrade` needs."""

    registry: str
    namespace: str
    values: tuple[str, ...]           # copies of the customer's values files, lowest first
    sets: tuple[str, ...]
    kubeconfig: str | None
    plain_http: bool
    charts: tuple[HelmChartInfo, ...]

    @classmethod
    def from_json(cls, doc: Any) -> HelmInfo:
        d = _fields(doc, "helm", {"registry", "namespace", "values", "sets", "kubeconfig", "plain_http", "charts"})
        charts = [_fields(c, "helm.charts[]", {"name", "version", "release", "rendered"}) for c in d["charts"]]
        return cls(str(d["registry"]), str(d["namespace"]), _strings(d["values"], "helm.values"),
                   _strings(d["sets"], "helm.sets"), d["kubeconfig"], bool(d["plain_http"]),
                   tuple(HelmChartInfo(**{k: str(v) for k, v in c.items()}) for c in charts))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "values": list(self.values), "sets": list(self.sets),
                "charts": [asdict(c) for c in self.charts]}


@dataclass(frozen=True)
class ReleaseInfo:
    """release.json: what a release is and how its target applies it."""

    name: str
    version: str
    project: str
    registry: str
    target: str
    compose: tuple[str, ...] = ()     # rewritten compose files, relative to the release directory
    helm: HelmInfo | None = None
    env_file: str | None = None       # the release's settings, secrets included (outside the release)
    config: dict[str, Any] | None = None   # public values and the layer each came from
    keep: tuple[str, ...] = ()        # blue-green: compose files of the singletons that run once
    routes: tuple[Port, ...] = ()     # blue-green: the ports the front proxy publishes

    @classmethod
    def from_json(cls, doc: Any) -> ReleaseInfo:
        d = _fields(doc, "release.json", {"name", "version", "project", "registry", "target", "compose"},
                    frozenset({"helm", "env_file", "config", "keep", "routes"}))
        return cls(str(d["name"]), str(d["version"]), str(d["project"]), str(d["registry"]), str(d["target"]),
                   _strings(d["compose"], "compose"), HelmInfo.from_json(d["helm"]) if d.get("helm") else None,
                   d.get("env_file"), d.get("config"), _strings(d.get("keep", []), "keep"),
                   tuple(Port.from_json(p) for p in d.get("routes", [])))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "version": self.version, "project": self.project,
                               "registry": self.registry, "target": self.target, "compose": list(self.compose)}
        if self.helm:
            doc["helm"] = self.helm.to_json()
        if self.env_file:
            doc["env_file"] = self.env_file
        if self.config:
            doc["config"] = self.config
        if self.keep:
            doc["keep"] = list(self.keep)
        if self.routes:
            doc["routes"] = [p.to_json() for p in self.routes]
        return doc


@dataclass(frozen=True)
class Release:
    path: Path
    info: ReleaseInfo

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def project(self) -> str:
        return self.info.project

    def manifest(self) -> BundleManifest:
        return parse_manifest((self.path / MANIFEST).read_bytes())

    def settings(self) -> dict[str, str]:
        """NAME -> value of the settings it runs with, secrets included (written by config.py:
        NAME=VALUE lines, values without line breaks)."""
        if not self.info.env_file:
            return {}
        try:
            lines = Path(self.info.env_file).read_text().splitlines()
        except OSError as exc:
            raise EnvironmentProblem(f"cannot read the settings of release {self.path.name} "
                                     f"({self.info.env_file}): {exc.strerror}") from None
        return dict(line.split("=", 1) for line in lines if "=" in line)


def load(app: App, version: str) -> Release:
    path = app.releases / version
    try:
        return Release(path, ReleaseInfo.from_json(json.loads((path / "release.json").read_text())))
    except FileNotFoundError:
        raise EnvironmentProblem(f"release {version} of {app.name} is missing ({path / 'release.json'}); roll back "
                                 "to another release (satchel rollback --to VERSION) or install a bundle "
                                 "again") from None
    except ValueError as exc:
        raise EnvironmentProblem(f"{path / 'release.json'} is damaged ({exc}); roll back to another "
                                 "release or install the bundle again") from None


def exists(app: App, version: str) -> bool:
    return (app.releases / version / "release.json").is_file()


def new_id(app: App, version: str, kind: str, bare: bool = True) -> str:
    """The directory for a new release: VERSION (if `bare`, and no release that ran healthy has
    it; a leftover that never did is replaced), else VERSION+KIND.N. A kept release is never
    overwritten in place: a re-install, another build or a configuration gets its own."""
    if bare and version not in installed_versions(app):
        return version
    taken = [int(p.name.rsplit(".", 1)[1]) for p in app.releases.glob(f"{glob.escape(version)}+{kind}.*")
             if p.name.rsplit(".", 1)[1].isdigit()]
    return f"{version}+{kind}.{max(taken, default=0) + 1}"


def version_of(app: App, release_id: str) -> str | None:
    """The bundle version of a release directory (a name like 1.0.0+config.2 is not one)."""
    try:
        return load(app, release_id).info.version
    except EnvironmentProblem:
        return None


def staging_dir(app: App, version: str) -> Path:
    """A fresh temporary directory next to releases/VERSION."""
    app.releases.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=app.releases, prefix=f".tmp-{version}-"))


def write_metadata(tmp: Path, manifest_bytes: bytes, signatures: bytes, info: ReleaseInfo) -> None:
    write_atomic(tmp / MANIFEST, manifest_bytes)
    write_atomic(tmp / SIGNATURES, signatures)
    write_atomic(tmp / "release.json", json.dumps(info.to_json(), indent=2, sort_keys=True).encode())


def commit(app: App, tmp: Path, version: str) -> Release:
    """Rename the complete temporary directory to releases/VERSION (replacing an old copy)."""
    final = app.releases / version
    for sub in [p for p in tmp.rglob("*") if p.is_dir()] + [tmp]:
        fsync_dir(sub)
    if final.exists():
        trash = app.releases / f".trash-{version}-{os.getpid()}"
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(app.releases)
    return load(app, version)


def clean_leftovers(app: App) -> None:
    """Temporary and trash directories a killed run left behind."""
    if app.releases.is_dir():
        for p in app.releases.iterdir():
            if p.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(p, ignore_errors=True)


def installed_versions(app: App) -> list[str]:
    """Releases on disk that ran healthy at some point, most recently current first.
    A release that never passed its health check is not a rollback target."""
    on_disk = {p.name for p in app.releases.glob("[!.]*")}
    order: list[str] = []
    for entry in reversed(app.history()):
        version = entry.get("version")
        if entry.get("event") in ("installed", "rolled-back", "configured") and version in on_disk \
                and version not in order:
            order.append(str(version))
    return order


def previous_version(app: App) -> str | None:
    current = app.current()
    return next((v for v in installed_versions(app) if v != current), None)


def retain(app: App, keep: int) -> list[str]:
    """Keep the newest `keep` releases (always current and the one before it) and remove the
    rest; the blobs they alone needed go in the next collection (gc.py). Returns removed versions."""
    versions = installed_versions(app)
    protected = {app.current(), previous_version(app)}
    kept = [v for v in versions if v in protected][:2]
    kept += [v for v in versions if v not in kept][: max(0, keep - len(kept))]
    removed = sorted(p.name for p in app.releases.glob("[!.]*") if p.name not in kept)
    for version in removed:
        shutil.rmtree(app.releases / version, ignore_errors=True)
        faults.point("during-retention")
    return removed
