"""`satchel sbom diff OLD NEW`: what an upgrade adds, removes and changes, package by package,
from the SBOMs the bundles carry (or that the installed release brought into the store)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

from bundler import sbom
from bundler.errors import BundleError, SpecError
from bundler.manifest import BundleManifest
from bundler.oci.refs import Reference
from bundler.output import emit_json
from signing.grammar import now_utc
from signing.keys import load_verify_key

from . import releases
from .cli_common import app_option, host_of
from .intake import signature_check, trusted_keys
from .state import App, Host


def _installed(app: App) -> tuple[BundleManifest, dict[sbom.Sbom, bytes]]:
    current = app.current()
    if current is None:
        raise SpecError(f"{app.name} has no current release")
    manifest = releases.load(app, current).manifest()
    out = {}
    for s in manifest.sboms:
        data = (app.host.store.blobs / s.digest.split(":", 1)[1]).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != s.digest:
            raise BundleError(f"the stored SBOM of {s.image} is damaged (satchel store verify)")
        out[s] = data
    return manifest, out


def _side(host: Host, app_name: str | None, text: str, keys: list[Path]) -> tuple[BundleManifest,
                                                                                   dict[sbom.Sbom, bytes]]:
    if text == "installed":
        return _installed(host.select(app_name))
    trusted = trusted_keys(host, [load_verify_key(k) for k in keys])
    return sbom.from_bundle(Path(text), signature_check(host, trusted, now_utc()), trusted)


def _by_image(found: dict[sbom.Sbom, bytes]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Packages by (repository, platform): a new version of an image has a new tag."""
    return {(Reference.parse(s.image).repository, s.platform): sbom.packages(data) for s, data in found.items()}


@click.group("sbom")
def sbom_cmd() -> None:
    """The software bills of materials that bundles carry."""


@sbom_cmd.command("diff")
@click.argument("old")
@click.argument("new")
@app_option
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
              help="Trusted vendor key (default: the keys in ROOT/trust).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sbom_diff(ctx: click.Context, old: str, new: str, app_name: str | None, keys: tuple[Path, ...],
              as_json: bool) -> None:
    """What NEW adds, removes and changes against OLD. Each is a bundle (verified), or
    `installed` for the application's current release."""
    host = host_of(ctx)
    (_, before), (_, after) = (_side(host, app_name, side, list(keys)) for side in (old, new))
    old_images, new_images = _by_image(before), _by_image(after)
    result: list[dict[str, Any]] = []
    for key in sorted(old_images.keys() | new_images.keys()):
        change = sbom.diff(old_images.get(key, []), new_images.get(key, []))
        result.append({"image": key[0], "platform": key[1], **change})
    if as_json:
        emit_json({"old": old, "new": new, "images": result})
        return
    for image in result:
        counts = ", ".join(f"{len(image[k])} {k}" for k in ("added", "removed", "changed"))
        click.echo(f"{image['image']} ({image['platform']}): {counts}")
        for p in image["added"]:
            click.echo(f"  + {p['name']} {p['version']} ({p['type']})")
        for p in image["removed"]:
            click.echo(f"  - {p['name']} {p['version']} ({p['type']})")
        for p in image["changed"]:
            click.echo(f"  ~ {p['name']} {p['from']} -> {p['version']} ({p['type']})")
