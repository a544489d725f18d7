"""Vendor commands: keygen, build, inspect, verify. Thin: parse options, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path

import click

from signing.grammar import now_utc
from signing.keys import KEY_TYPES, SigningKey, VerifyKey, load_signing_key, load_verify_key, write_key_pair

from . import sbom
from .delta import load_delta_base
from .errors import SpecError
from .output import emit_json, human
from .parts import find_index, parse_size, read_index, split
from .progress import Reporter
from .verify import authorizer, describe, verify_file


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
@click.option("--split-size", default=None, help="Write parts of at most this size (e.g. 4000M for FAT32) "
              "and a signed parts index instead of one file.")
@click.option("--delta-from", type=click.Path(exists=True, path_type=Path), default=None,
              help="Leave out the blobs listed in this inventory (satchel inventory) or old bundle.")
@click.option("--no-sbom", is_flag=True, help="Leave out the software bill of materials of each image (Syft).")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@click.pass_context
def build_cmd(ctx: click.Context, spec: Path, output: Path, keys: tuple[Path, ...], cache: Path | None,
              level: int, split_size: str | None, delta_from: Path | None, no_sbom: bool, as_json: bool) -> None:
    """Build a signed bundle from SPEC (default ./satchel.yaml)."""
    # Imported here: registry and Docker clients are slow to import and verify needs neither.
    from .build import BuildOptions, build, default_cache
    from .spec import load_spec

    signing_keys = [load_signing_key(k) for k in keys]
    parsed = load_spec(spec)
    reporter = Reporter(quiet=ctx.obj.get("quiet", False) or as_json)
    part_size = parse_size(split_size) if split_size else None
    base = load_delta_base(delta_from) if delta_from else None
    options = BuildOptions(cache=cache or default_cache(), level=level, sbom=not no_sbom)
    manifest = build(parsed, output, signing_keys, options, reporter, base=base)
    size = output.stat().st_size
    if part_size:
        index = split(output, part_size, signing_keys)
        output.unlink()
        output = index
    if as_json:
        emit_json({"bundle": str(output), "name": manifest.name, "version": manifest.version,
                   "images": len(manifest.images), "unpackedSize": manifest.unpacked_size,
                   "compressedSize": size, "signers": [k.public.keyid for k in signing_keys],
                   "external": len(manifest.external)})
    else:
        click.echo(f"built {output}: {manifest.name} {manifest.version}, {len(manifest.images)} image(s), "
                   f"{human(manifest.unpacked_size)} unpacked, {human(size)} compressed"
                   + (f", delta: {len(manifest.external)} blob(s) left to the host" if manifest.external else ""))


@click.command("split")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--size", required=True, help="Largest part, e.g. 4000M (FAT32 takes < 4G), 4480M (DVD).")
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Private key to sign the parts index with.")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def split_cmd(bundle: Path, size: str, keys: tuple[Path, ...], out_dir: Path | None) -> None:
    """Split BUNDLE into parts for removable media, with a signed parts index."""
    index = split(bundle, parse_size(size), [load_signing_key(k) for k in keys], out_dir)
    parts = read_index(index, None)[0].parts
    click.echo(f"wrote {len(parts)} part(s) and {index}; verify or install with {index.parent / parts[0].file}")


def _inspect_sbom(bundle: Path, wanted: str, keys: list[VerifyKey], as_json: bool) -> None:
    """Every package of the bundle's SBOMs: name, version, type, licence."""
    from .manifest import parse_manifest

    authorize = authorizer(keys, now_utc())[0] if keys else (lambda m, s: parse_manifest(m))
    manifest, found = sbom.from_bundle(bundle, authorize, keys or None)
    chosen = {s: data for s, data in found.items() if wanted == "*" or wanted in s.image}
    if not manifest.sboms:
        raise SpecError(f"{bundle} carries no SBOM (it was built with --no-sbom, or by an older Satchel)")
    if not chosen:
        raise SpecError(f"no SBOM of an image matching {wanted!r} (images: "
                        f"{', '.join(sorted({s.image for s in manifest.sboms}))})")
    listed = [{**s.to_json(), "packages": sbom.packages(data)} for s, data in sorted(chosen.items(),
                                                                                         key=lambda kv: kv[0].image)]
    if as_json:
        emit_json({"signatureVerified": bool(keys), "sboms": listed})
        return
    for entry in listed:
        click.echo(f"{entry['image']} ({entry['platform']}): {len(entry['packages'])} package(s)"
                   + ("" if keys else "; signature not checked (pass --key)"))
        for p in entry["packages"]:
            click.echo(f"  {p['name']:<40} {p['version']:<28} {p['type']:<12} {p['licence']}".rstrip())


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--sbom", "sbom_of", is_flag=False, flag_value="*", default=None, metavar="[IMAGE]",
              help="List the packages of every image (or of the images whose reference contains IMAGE), from "
                   "the SBOMs the bundle carries; reads the whole bundle.")
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
              help="With --sbom: check the bundle's signature with this key.")
@click.option("--json", "as_json", is_flag=True)
def inspect(bundle: Path, sbom_of: str | None, keys: tuple[Path, ...], as_json: bool) -> None:
    """Show what is inside a bundle (reads only its manifest; use verify to check it)."""
    if sbom_of is not None:
        _inspect_sbom(bundle, sbom_of, [load_verify_key(k) for k in keys], as_json)
        return
    info = describe(bundle)
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['name']} {info['version']}  created {info['created']}"
               + (f"  expires {info['expires']}" if info["expires"] else ""))
    if info["description"]:
        click.echo(f"            {info['description']}")
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
    for s in info["settings"]:
        need = "required" if s["required"] and "default" not in s else f"default {s['default']!r}" \
            if "default" in s else "optional"
        click.echo(f"setting     {s['name']} ({s['type']}{', secret' if s['secret'] else ''}, {need})"
                   + (f": {s['description']}" if s["description"] else ""))
    for g in info["grants"]:
        click.echo(f"grants      {g['service']}: {g['kind']}" + (f" {g['detail']}" if g["detail"] else "")
                   + "  (over the host)")
    for name, want in info["requirements"].items():
        click.echo(f"requires    {name} {json.dumps(want)}")
    for part in info["parts"]:
        click.echo(f"part        {part['file']}  {human(part['size'])}")
    if info["delta"]:
        bases = ", ".join(f"{b['name']} {b['version']}" for b in info["delta"]["base"]) or "unknown"
        click.echo(f"delta       needs {info['delta']['blobs']} blob(s) ({human(info['delta']['size'])}) "
                   f"already on the host, from: {bases}")
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
    with reporter.bar(_input_size(bundle), "verifying") as tick:
        result = verify_file(bundle, trusted, progress=tick)
    m = result.manifest
    if as_json:
        emit_json({"ok": True, "name": m.name, "version": m.version, "signers": list(result.signers),
                   "members": len(m.members), "unpackedSize": m.unpacked_size})
    else:
        signers = ", ".join(s[:16] for s in result.signers)
        click.echo(f"OK {bundle}: {m.name} {m.version}, {len(m.members)} members, "
                   f"{human(m.unpacked_size)} verified, signed by {signers}")


@click.command("verify-kit")
@click.argument("kit", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Vendor public key that must have signed SHA256SUMS.")
@click.option("--sums", type=click.Path(path_type=Path), default=None,
              help="The checksum file [default: SHA256SUMS next to KIT; its signature is SHA256SUMS.sig].")
@click.option("--json", "as_json", is_flag=True)
def verify_kit_cmd(kit: Path, keys: tuple[Path, ...], sums: Path | None, as_json: bool) -> None:
    """Check a Satchel kit against the vendor's signed SHA256SUMS before running it."""
    from .kit.verify import verify_kit

    report = verify_kit(kit, [load_verify_key(k) for k in keys], sums)
    if as_json:
        emit_json(report)
    else:
        click.echo(f"{kit.name}: OK (satchel {report['version']} {report['platform']}, "
                   f"SHA256SUMS signed by {report['signer'][:16]})")


def _input_size(path: Path) -> int:
    """Bytes to read, for the progress bar (0 if unknown: no bar)."""
    index = find_index(path)
    if index is not None:
        return read_index(index, None)[0].size
    return path.stat().st_size if path.is_file() else 0


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON schema of satchel.yaml (for editors; also docs/satchel.schema.json)."""
    click.echo(spec_schema())


def spec_schema() -> str:
    from .spec_model import SpecModel  # pydantic: imported only by the commands that need it

    return json.dumps(SpecModel.model_json_schema(), indent=2, sort_keys=True)

