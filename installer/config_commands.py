"""satchel config: an application's site values and secrets, and applying them as a release."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bundler.errors import SpecError
from bundler.output import emit_json

from .cli_common import app_of, app_option, deploy_options, logged
from .config import SiteConfig, parse_assignments, read_import, set_site_values
from .config import show as show_config
from .configure import apply_config
from .options import InstallOptions


@click.group("config")
def config_cmd() -> None:
    """Site configuration: values kept across upgrades, secrets apart (docs/CONFIGURATION.md)."""


@config_cmd.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="NAME=VALUE...")
@app_option
@click.pass_context
def config_set(ctx: click.Context, assignments: tuple[str, ...], app_name: str | None) -> None:
    """Set site values (not secrets); they apply from the next install or config apply."""
    app = app_of(ctx, app_name, new=True)
    values = parse_assignments(assignments, "config set")
    set_site_values(app, values)
    click.echo(f"set {', '.join(sorted(values))}; run satchel config apply to use them now")


@config_cmd.command("unset")
@click.argument("name")
@app_option
@click.pass_context
def config_unset(ctx: click.Context, name: str, app_name: str | None) -> None:
    """Remove a site value or secret."""
    if not SiteConfig(app_of(ctx, app_name, new=True)).unset(name):
        raise SpecError(f"{name} is not set on this host")
    click.echo(f"unset {name}")


@config_cmd.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@app_option
@click.pass_context
def config_import(ctx: click.Context, file: Path, app_name: str | None) -> None:
    """Set site values from a YAML/JSON mapping or NAME=VALUE lines."""
    ctx.invoke(config_set, assignments=tuple(f"{k}={v}" for k, v in read_import(file).items()), app_name=app_name)


@config_cmd.command("set-secret")
@click.argument("name")
@app_option
@click.pass_context
def config_set_secret(ctx: click.Context, name: str, app_name: str | None) -> None:
    """Set a secret from standard input (never from the command line)."""
    app = app_of(ctx, app_name, new=True)
    value = str(click.prompt(name, hide_input=True)) if sys.stdin.isatty() else sys.stdin.read().rstrip("\n")
    if not value:
        raise SpecError(f"no value for {name} on standard input")
    SiteConfig(app).set_secret(name, value)
    click.echo(f"secret {name} set; run satchel config apply to use it now")


@config_cmd.command("show")
@app_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_show(ctx: click.Context, app_name: str | None, as_json: bool) -> None:
    """Effective values for the current release and the layer each comes from."""
    rows = show_config(app_of(ctx, app_name))
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<24} {r['value'] if r['value'] is not None else '-'!s:<24} {r['layer']}")


@config_cmd.command("apply")
@click.option("--set", "sets", multiple=True, help="NAME=VALUE for this release only.")
@app_option
@deploy_options
@click.pass_context
def config_apply(ctx: click.Context, sets: tuple[str, ...], app_name: str | None, deploy: dict[str, Any],
                 as_json: bool) -> None:
    """Make a new release with the current bundle and the current configuration."""
    opts = InstallOptions(**deploy, settings=parse_assignments(sets, "--set"))
    out = logged(ctx, "config-apply", lambda host, reporter: apply_config(host.select(app_name), opts, reporter),
                  as_json)
    if not as_json:
        click.echo(f"{out.app} configuration applied as release {out.version} (was {out.previous})")
