"""`satchel snapshots`: the data snapshots kept with each release, and restoring one."""

from __future__ import annotations

from typing import Any

import click

from bundler.output import emit_json, human

from . import snapshots
from .cli_common import app_option, deploy_options, host_of, logged
from .install import restore_data
from .options import InstallOptions


@click.group("snapshots", invoke_without_command=True)
@app_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def snapshots_cmd(ctx: click.Context, app_name: str | None, as_json: bool) -> None:
    """The data snapshots of an application: taken before every switch, kept with the release
    whose data they hold."""
    if ctx.invoked_subcommand is not None:
        return
    app = host_of(ctx).select(app_name)
    found = snapshots.listed(app)
    if as_json:
        emit_json({"app": app.name, "snapshots": [s.to_json() for s in found]})
        return
    if not found:
        click.echo(f"no snapshots of {app.name} (a release that declares data volumes gets one at every switch)")
        return
    rows = [("ID", "RELEASE", "TAKEN (UTC)", "SIZE", "VOLUMES")] + [
        (s.id, s.release, s.taken, human(s.size), ", ".join(v["volume"] for v in s.volumes)) for s in reversed(found)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@snapshots_cmd.command("restore")
@click.argument("snap_id", metavar="ID")
@app_option
@deploy_options
@click.pass_context
def snapshots_restore(ctx: click.Context, snap_id: str, app_name: str | None, deploy: dict[str, Any],
                      as_json: bool) -> None:
    """Put snapshot ID's data back under the current release (the data it replaces is
    snapshotted first). The services that use the volumes restart."""
    opts = InstallOptions(**deploy)
    out = logged(ctx, "snapshots-restore",
                 lambda host, reporter: restore_data(host.select(app_name), snap_id, opts, reporter), as_json)
    if not as_json:
        click.echo(f"restored snapshot {snap_id} under {out.app} {out.version}")
