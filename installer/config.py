"""Site configuration of one application (under apps/NAME/), kept across upgrades:

    config/site.json            non-secret values: {"NAME": "value"}
    secrets/            (0700)  apart from every other piece of state
      values.json       (0600)  secret values, set only from standard input
      env/<release>.env (0600)  what Compose interpolates for one release (never in releases/)
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from bundler.errors import SpecError
from bundler.manifest import BundleManifest
from bundler.oci.layout import write_atomic
from bundler.settings import Resolved, Setting, resolve

from . import releases, targets
from .diagnostics.redact import is_secret_name
from .state import App


def _read(path: Path) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
    except FileNotFoundError:
        return {}
    except ValueError:
        raise SpecError(f"{path} is damaged; fix or remove it") from None


LOCK_WAIT = 60   # seconds a configuration change waits for another satchel command


class SiteConfig:
    def __init__(self, app: App) -> None:
        self.app = app
        self.site_file = app.dir / "config" / "site.json"
        self.secrets_dir = app.dir / "secrets"
        self.secrets_file = self.secrets_dir / "values.json"

    def site(self) -> dict[str, str]:
        return _read(self.site_file)

    def secrets(self) -> dict[str, str]:
        return _read(self.secrets_file)

    # Each change reads, changes and writes a file: under the root's lock, so that concurrent
    # writers queue (waiting up to LOCK_WAIT seconds) and none loses an update.

    def set(self, values: dict[str, str]) -> None:
        with self.app.host.lock(LOCK_WAIT):
            write_atomic(self.site_file, json.dumps({**self.site(), **values}, indent=1, sort_keys=True).encode())

    def unset(self, name: str) -> bool:
        with self.app.host.lock(LOCK_WAIT):
            site, secrets = self.site(), self.secrets()
            if name in site:
                del site[name]
                write_atomic(self.site_file, json.dumps(site, indent=1, sort_keys=True).encode())
                return True
            if name in secrets:
                del secrets[name]
                self._write_secrets(secrets)
                return True
            return False

    def set_secret(self, name: str, value: str) -> None:
        with self.app.host.lock(LOCK_WAIT):
            self._write_secrets({**self.secrets(), name: value})

    def _write_secrets(self, secrets: dict[str, str]) -> None:
        self.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        write_atomic(self.secrets_file, json.dumps(secrets, sort_keys=True).encode(), mode=0o600)

    def env_file(self, release_id: str, resolved: Resolved) -> Path:
        """The values Compose interpolates for one release, readable only by its owner."""
        (self.secrets_dir / "env").mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        for value in resolved.values.values():
            if "\n" in value:
                raise SpecError("setting values cannot contain line breaks")
        path = self.secrets_dir / "env" / f"{release_id}.env"
        write_atomic(path, "".join(f"{k}={v}\n" for k, v in sorted(resolved.values.items())).encode(), mode=0o600)
        return path


def parse_assignments(items: list[str] | tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SpecError(f"{what} {item!r}: write NAME=VALUE")
        out[name] = value
    return out


def read_import(path: Path) -> dict[str, str]:
    """A YAML/JSON mapping, or NAME=VALUE lines (# comments allowed)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None
    if isinstance(doc, dict):
        nested = sorted(str(k) for k, v in doc.items() if isinstance(v, (dict, list)) or v is None)
        if nested:
            raise SpecError(f"{path}: {', '.join(nested[:3])} has no single value; a setting is one string, "
                            "number or boolean (is this a compose file?)")
        return {str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in doc.items()}
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return parse_assignments(lines, f"{path}:")


def resolve_settings(app: App, manifest: BundleManifest, overrides: dict[str, str], target: str | None) -> Resolved:
    """Settings from all layers; any problem stops the install here, before any change. The
    install's --set are settings only for a target that takes them (Helm's are chart values)."""
    site = SiteConfig(app)
    if not targets.choose(target, manifest).takes_settings:
        overrides = {}
    return resolve(list(manifest.settings), site.site(), overrides, site.secrets())


def config_info(app: App, release_id: str, manifest: BundleManifest, resolved: Resolved) -> dict[str, Any]:
    """release.json's view of the configuration: public values and layers, and where the env
    file (secrets included) lives — outside the release directory."""
    if not manifest.settings:
        return {}
    env = SiteConfig(app).env_file(release_id, resolved)
    return {"env_file": str(env), "config": {"values": resolved.public(list(manifest.settings)),
                                             "layers": resolved.layers}}


def declared_settings(app: App) -> list[Setting]:
    """What the current release lets the customer configure."""
    current = app.current()
    return list(releases.load(app, current).manifest().settings) if current else []


def set_site_values(app: App, values: dict[str, str]) -> None:
    """Site values, never secrets: a name the release declares secret, or (before anything
    declares it) one that looks secret, must go through set-secret."""
    declared = {s.name: s.secret for s in declared_settings(app)}
    unknown = sorted(set(values) - set(declared)) if app.current() else []
    if unknown:   # before the first install nothing is declared yet: any name is taken
        close = difflib.get_close_matches(unknown[0], declared, n=1)
        raise SpecError(f"{app.name} declares no setting {unknown[0]}"
                        + (f" (did you mean {close[0]}?)" if close else "")
                        + f"; it has {', '.join(sorted(declared)) or 'none'}")
    for name in values:
        if declared.get(name, is_secret_name(name)):
            raise SpecError(f"{name} is secret: use satchel config set-secret {name} (reads standard input)")
    SiteConfig(app).set(values)


def show(app: App) -> list[dict[str, Any]]:
    """Each declared setting: its effective value (secrets only as set/unset) and its layer."""
    config = SiteConfig(app)
    site, secrets = config.site(), config.secrets()
    rows = []
    for s in declared_settings(app):
        try:
            resolved = resolve([s], {k: v for k, v in site.items() if k == s.name}, {},
                               {k: v for k, v in secrets.items() if k == s.name})
            value, layer = resolved.values.get(s.name), resolved.layers.get(s.name, "unset")
        except SpecError:
            value, layer = None, "unset (required!)" if s.required else "invalid"
        shown = ("set" if value is not None else "unset") if s.secret else value
        rows.append({"name": s.name, "value": shown, "layer": layer, "secret": s.secret, "type": s.type,
                     "required": s.required, "description": s.description})
    return rows
