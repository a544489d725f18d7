"""`satchel policy`: the site policy on what bundles may grant their containers over the host."""

from __future__ import annotations

import click

from bundler.grants import KINDS
from bundler.output import emit_json

from . import policy
from .cli_common import host_of
from .truststore import TrustStore


@click.group("policy", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def policy_cmd(ctx: click.Context, as_json: bool) -> None:
    """The site policy: which grants over the host (privileged, host namespaces, added
    capabilities, host paths, devices, unconfined) a bundle may ask for. Refused bundles exit 4."""
    if ctx.invoked_subcommand is not None:
        return
    current = policy.load(TrustStore(host_of(ctx).trust))
    if as_json:
        emit_json(current.to_json())
        return
    click.echo(f"forbidden: {', '.join(sorted(current.forbid)) or 'nothing'}")
    if current.allow_paths:
        click.echo(f"host paths allowed anyway: {', '.join(current.allow_paths)}")


@policy_cmd.command("set")
@click.option("--forbid", multiple=True, type=click.Choice(KINDS), help="A kind of grant to refuse (repeatable).")
@click.option("--allow-path", "allow_paths", multiple=True,
              help="A host path (and what is below it) allowed even when host-path is forbidden (repeatable).")
@click.pass_context
def policy_set(ctx: click.Context, forbid: tuple[str, ...], allow_paths: tuple[str, ...]) -> None:
    """Replace the site policy."""
    host = host_of(ctx)
    host.init()
    with host.lock(60):
        policy.save(TrustStore(host.trust), policy.SitePolicy.make(forbid, allow_paths))
    host.record("site-policy", forbid=sorted(forbid), allow_paths=sorted(allow_paths))
    click.echo(f"site policy: forbidden {', '.join(sorted(forbid)) or 'nothing'}"
               + (f"; host paths allowed anyway: {', '.join(sorted(allow_paths))}" if allow_paths else ""))


@policy_cmd.command("clear")
@click.pass_context
def policy_clear(ctx: click.Context) -> None:
    """Allow every grant again (the default)."""
    host = host_of(ctx)
    host.init()
    with host.lock(60):
        policy.save(TrustStore(host.trust), policy.SitePolicy())
    host.record("site-policy", forbid=[], allow_paths=[])
    click.echo("site policy: every grant allowed")
