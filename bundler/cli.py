"""Vendor commands: keygen, build, inspect, verify. Thin: parse options, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from signing.keys import KEY_TYPES, SigningKey, load_signing_key, load_verify_key, write_key_pair

from .progress import Reporter
from .verify import describe, verify_file


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Writes OUT.key (private, mode 0600) and OUT.pub.")
@click.option("--type", "key_type", type=click.Choice(KEY_TYPES), default="ed25519", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the key id and paths as JSON.")
def keygen(out: Path, key_type: str, as_json: bool) -> None:
    """Create a signing key pair for bundles."""
    key = SigningKey.generate(key_type)
    private, public = write_key_pair(key, out)
    if as_json:
        emit_json({"private": str(private), "public": str(public), "keyid": key.public.keyid,
                   "algorithm": key_type})
    else:
        click.echo(f"wrote {private} (keep it secret) and {public}\nkey id {key.public.keyid}")


@click.command("build")
@click.argument("spec", type=click.Path(path_type=Path), default="satchel.yaml")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Private key to sign with (repeat for several signatures).")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Blob cache directory [default: ~/.cache/satchel].")
@click.option("--level", type=click.IntRange(1, 19), default=3, show_default=True, help="zstd level.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@click.pass_context
def build_cmd(ctx: click.Context, spec: Path, output: Path, keys: tuple[Path, ...], cache: Path | None,
              level: int, as_json: bool) -> None:
    """Build a signed bundle from SPEC (default ./satchel.yaml)."""
    # Imported here: registry and Docker clients are slow to import and verify needs neither.
    from .build import BuildOptions, build, default_cache
    from .spec import load_spec

    signing_keys = [load_signing_key(k) for k in keys]
    parsed = load_spec(spec)
    reporter = Reporter(quiet=ctx.obj.get("quiet", False) or as_json)
    options = BuildOptions(cache=cache or default_cache(), level=level)
    manifest = build(parsed, output, signing_keys, options, reporter)
    size = output.stat().st_size
    if as_json:
        emit_json({"bundle": str(output), "name": manifest.name, "version": manifest.version,
                   "images": len(manifest.images), "unpackedSize": manifest.unpacked_size,
                   "compressedSize": size, "signers": [k.public.keyid for k in signing_keys]})
    else:
        click.echo(f"built {output}: {manifest.name} {manifest.version}, {len(manifest.images)} image(s), "
                   f"{human(manifest.unpacked_size)} unpacked, {human(size)} compressed")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def inspect(bundle: Path, as_json: bool) -> None:
    """Show what is inside a bundle (reads only its manifest; use verify to check it)."""
    info = describe(bundle)
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['name']} {info['version']}  created {info['created']}"
               + (f"  expires {info['expires']}" if info["expires"] else ""))
    for s in info["signers"]:
        click.echo(f"signed by   {s['keyid']} ({s['algorithm']}, not verified here: run satchel verify)")
    if not info["signers"]:
        click.echo("signed by   nobody (unsigned)")
    click.echo(f"images      {len(info['images'])}")
    for i in info["images"]:
        plats = ",".join(i["platforms"]) or "?"
        click.echo(f"  {i['ref']}\n    {i['digest']}  {plats}  {human(i['size'])}"
                   + (f"  ({i['sharedBlobs']} shared blob(s))" if i["sharedBlobs"] else ""))
    for c in info["charts"]:
        click.echo(f"chart       {c['name']} {c['version']} ({c['path']})")
    for kind in ("compose", "files"):
        for f in info[kind]:
            click.echo(f"{kind:<11} {f['path']}  {human(f['size'])}")
    click.echo(f"size        {human(info['totalSize'])} in images and files, {human(info['dedupedSize'])} "
               f"after dedup ({info['sharedBlobs']} shared blob(s), {human(info['sharedBytes'])} saved), "
               f"{human(info['compressedSize'])} compressed")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Trusted public key (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def verify(ctx: click.Context, bundle: Path, keys: tuple[Path, ...], as_json: bool) -> None:
    """Verify signature and every byte of BUNDLE, streaming; writes nothing."""
    trusted = [load_verify_key(k) for k in keys]
    reporter = Reporter(quiet=ctx.obj.get("quiet", False) or as_json)
    with reporter.bar(bundle.stat().st_size if bundle.exists() else 0, "verifying") as tick:
        result = verify_file(bundle, trusted, progress=tick)
    m = result.manifest
    if as_json:
        emit_json({"ok": True, "name": m.name, "version": m.version, "signers": list(result.signers),
                   "members": len(m.members), "unpackedSize": m.unpacked_size})
    else:
        signers = ", ".join(s[:16] for s in result.signers)
        click.echo(f"OK {bundle}: {m.name} {m.version}, {len(m.members)} members, "
                   f"{human(m.unpacked_size)} verified, signed by {signers}")


COMMANDS = [keygen, build_cmd, inspect, verify]
