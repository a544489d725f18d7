"""`satchel preflight BUNDLE`: verify the bundle (signature and every member; nothing is
written, the compose files are kept in memory) and run every check against this host."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from bundler.output import emit_json
from bundler.verify import read_keeping
from signing.grammar import now_utc
from signing.keys import VerifyKey, load_verify_key

from ..cli_common import host_of
from ..intake import compose_services, project_for, signature_check, trusted_keys
from ..options import InstallOptions
from ..state import Host
from ..targets.compose import MAX_COMPOSE_BYTES
from . import run
from .model import Context, Result


def check_bundle(host: Host, bundle: Path, keys: Sequence[VerifyKey], project: str | None) -> list[Result]:
    trusted = trusted_keys(host, keys)
    verify_sig = signature_check(host, trusted, now_utc())
    manifest, kept = read_keeping(bundle, verify_sig, lambda m: {f.digest for f in m.compose}, trusted,
                                  MAX_COMPOSE_BYTES)
    app = host.app(manifest.name)
    services = compose_services(manifest, lambda hex_: kept[f"sha256:{hex_}"])
    return run(Context(host, app, manifest, services,
                       project_for(app, InstallOptions(project=project), app.current(), manifest), True))


@click.command("preflight")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
              help="Trusted vendor key (default: the keys in ROOT/trust).")
@click.option("--project", default=None, help="The Compose project it would run under (default: as install).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def preflight_cmd(ctx: click.Context, bundle: Path, keys: tuple[Path, ...], project: str | None,
                  as_json: bool) -> None:
    """Verify a bundle and check this host against it, without installing: exit 0 if every
    strict check passes, 4 if one fails, 3 if the bundle is rejected."""
    results = check_bundle(host_of(ctx), bundle, [load_verify_key(k) for k in keys], project)
    failed = [r for r in results if not r.ok and r.level == "strict"]
    if as_json:
        emit_json({"ok": not failed, "checks": [r.to_json() for r in results]})
    else:
        for r in results:
            click.echo(r.line())
    ctx.exit(4 if failed else 0)
