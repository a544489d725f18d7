"""Customer commands: install, rollback, remove, status, history, trust, inventory. Thin over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bundler.errors import SpecError
from bundler.oci.layout import write_atomic
from bundler.output import emit_json
from bundler.targets import TARGETS
from signing.grammar import format_time, now_utc
from signing.keys import load_verify_key

from . import storecheck
from .cli_common import DURATION, app_of, app_option, deploy_options, host_of, logged, reporter_for
from .config import parse_assignments
from .errors import StoreDamaged
from .install import install, rollback
from .intake import trusted_keys
from .options import InstallOptions
from .removal import remove
from .status import inventory, status
from .targets.helm import HelmSettings
from .truststore import TrustStore


@click.command("install")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
              help="Trusted vendor key (default: the keys in ROOT/trust).")
@click.option("--allow-downgrade", is_flag=True, help="Install even if older than the installed release.")
@click.option("--replace-build", is_flag=True, help="Install a bundle of a version already on this host from "
              "another build (as a release of its own).")
@click.option("--keep", type=click.IntRange(2), default=3, show_default=True, help="Releases to keep.")
@click.option("--project", default=None, help="Compose project name (default: the bundle's name).")
@click.option("--target", type=click.Choice(TARGETS), default=None,
              help="Where to deploy (default: the bundle's choice, else compose files win over charts).")
@click.option("--values", "values", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Helm: customer values file over the chart's defaults (repeatable, later wins).")
@click.option("--set", "sets", multiple=True,
              help="NAME=VALUE for this install only: a setting (Compose) or a Helm value (wins over --values).")
@click.option("--namespace", default="default", show_default=True, help="Helm: Kubernetes namespace.")
@click.option("--kubeconfig", default=None, help="Helm: kubeconfig file (default: $KUBECONFIG, ~/.kube/config).")
@click.option("--render-only", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Verify, load the images, write the rendered release to DIR and stop (no switch).")
@deploy_options
@click.pass_context
def install_cmd(ctx: click.Context, bundle: Path, keys: tuple[Path, ...], allow_downgrade: bool, replace_build: bool,
                keep: int,
                project: str | None, target: str | None, values: tuple[Path, ...], sets: tuple[str, ...],
                namespace: str, kubeconfig: str | None, render_only: Path | None, deploy: dict[str, Any],
                as_json: bool) -> None:
    """Verify BUNDLE, load its images and switch the application to it."""
    opts = InstallOptions(**deploy, keys=[load_verify_key(k) for k in keys], allow_downgrade=allow_downgrade,
                          replace_build=replace_build, keep=keep, project=project, target=target,
                          render_only=render_only,
                          helm=HelmSettings(namespace, values, sets, kubeconfig),
                          settings=parse_assignments(sets, "--set"))
    out = logged(ctx, "install", lambda host, reporter: install(host, bundle, opts, reporter), as_json,
                  f"bundle {bundle.resolve()}")
    if not as_json and out.action == "already-installed":
        click.echo(f"{out.app} {out.version} is already installed and healthy; " + (
            f"{out.repaired} damaged stored blob(s) put back from the bundle" if out.repaired else "nothing to do"))
    elif not as_json and out.action == "rendered":
        click.echo(f"rendered {out.app} {out.version} into {render_only}; {out.pushed_blobs} blob(s) pushed; "
                   "nothing switched")
    elif not as_json:
        click.echo(f"installed {out.app} {out.version}" + (f" (was {out.previous})" if out.previous else "")
                   + f"; {out.pushed_blobs} blob(s) pushed"
                   + (f"; removed old release(s) {', '.join(out.removed)}" if out.removed else ""))


@click.command("rollback")
@click.option("--to", "to", default=None, help="Version to go back to (default: the previous release); "
              "the current version re-applies it.")
@click.option("--with-data", is_flag=True, help="Also bring back the data the release had when it was left "
              "(its latest snapshot); the data of now is snapshotted first.")
@app_option
@deploy_options
@click.pass_context
def rollback_cmd(ctx: click.Context, to: str | None, with_data: bool, app_name: str | None, deploy: dict[str, Any],
                 as_json: bool) -> None:
    """Switch an application back to an earlier release kept on this host. Its data volumes are
    left as they are unless --with-data."""
    opts = InstallOptions(**deploy, with_data=with_data)
    out = logged(ctx, "rollback", lambda host, reporter: rollback(host.select(app_name), to, opts, reporter),
                  as_json)
    if not as_json and out.action == "reapplied":
        click.echo(f"re-applied {out.app} {out.version}: its services are running and healthy")
    elif not as_json:
        click.echo(f"rolled {out.app} back to {out.version} (was {out.previous})")


@click.command("remove")
@click.argument("name", metavar="APP")
@click.option("--yes", is_flag=True, help="Do it without asking (needed when not run from a terminal).")
@click.option("--purge", is_flag=True, help="Also delete its data volumes, configuration, secrets and history "
              "(needs --yes).")
@click.option("--wait", "lock_wait", type=DURATION, default=0, help="Wait this long for another satchel run.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def remove_cmd(ctx: click.Context, name: str, yes: bool, purge: bool, lock_wait: float, as_json: bool) -> None:
    """Remove application APP: its containers, networks and releases, and every image layer no
    other application needs. Its volumes, configuration and secrets stay unless --purge."""
    app = app_of(ctx, name)
    if purge and not yes:
        raise SpecError("--purge deletes the application's data volumes: confirm with --yes")
    if not yes:
        if not sys.stdin.isatty():
            raise SpecError(f"satchel remove {name} asks for confirmation: run it from a terminal or pass --yes")
        if not click.confirm(f"Remove {name} ({app.current() or 'nothing running'}) from this host? Its "
                             "volumes, configuration and secrets stay."):
            click.echo("nothing removed")
            return
    out = logged(ctx, "remove", lambda host, reporter: remove(app, purge, lock_wait, reporter), as_json)
    if not as_json:
        click.echo(f"removed {out.app}" + (f" (releases {', '.join(out.removed)})" if out.removed else "")
                   + ("; volumes, configuration and secrets deleted" if purge else
                      "; its volumes, configuration and secrets are kept"))


@click.command("status")
@app_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status_cmd(ctx: click.Context, app_name: str | None, as_json: bool) -> None:
    """Every application on this host; the one chosen (or the only one) in detail: its
    services and anything that runs differently from its release (drift)."""
    host = host_of(ctx)
    info = status(host, host.select(app_name) if app_name else None)
    if as_json:
        emit_json(info)
        return
    if not info["apps"]:
        click.echo(f"no release installed under {host.path}")
        return
    if len(info["apps"]) > 1 or app_name:
        click.echo(f"{'APP':<20} {'CURRENT':<20} {'HEALTH':<10} SERVICES")
        for row in info["apps"]:
            click.echo(f"{row['app']:<20} {row['current'] or '-':<20} {row['health']:<10} {row['services']}")
    if "app" not in info:
        return
    current = info["current"]
    click.echo(f"{info['app']} {current or '(nothing running)'}"
               + (f"  (project {info['project']}, registry {info['registry']})" if current else ""))
    for s in info["services"]:
        click.echo(f"  {s['service']:<16} {s['state']:<10} {s['health']:<10} {s['image']}")
    for d in info["drift"]:
        click.echo(f"  drift: {d['service']} {d['container']}: {d['kind']}: {d['detail']}")
    if switch := info.get("switch"):
        runs = ", ".join(f"{c}: {r}" for c, r in switch["colours"].items() if r) or "nothing"
        click.echo(f"blue-green: {switch['live'] or 'no'} colour live ({runs}); front proxy "
                   f"{switch['proxy']['container']} {switch['proxy']['state']}; " + "; ".join(switch["ports"]))
    click.echo("releases kept: " + (", ".join(f"{v} (current)" if v == current else v for v in info["releases"])
                                    or "none"))
    watch_until = (info["pending"] or {}).get("watch_until")
    if watch_until:
        click.echo(f"watching until {watch_until}: rolled back automatically if it fails (if no satchel runs, "
                   "the next command concludes the watch)")
    elif info["pending"]:
        click.echo(f"interrupted operation pending: {info['pending']} (the next command finishes it)")


@click.command("history")
@app_option
@click.option("--host", "host_events", is_flag=True, help="Host-level events: removals, migrations, key changes.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, app_name: str | None, host_events: bool, as_json: bool) -> None:
    """Every install, switch, failure and rollback of an application (or the host's own events)."""
    host = host_of(ctx)
    entries = host.history() if host_events else host.select(app_name).history()
    if as_json:
        emit_json(entries)
        return
    width = max([len(str(e.get("version") or "")) for e in entries] + [7])
    for e in entries:
        extra = " ".join(f"{k}={v}" for k, v in sorted(e.items())
                         if k not in ("time", "event", "version") and v not in (None, "", []))
        click.echo(f"{e.get('time')}  {e.get('event', ''):<14} {e.get('version') or '-':<{width}}  {extra}".rstrip())


@click.group("trust")
def trust_cmd() -> None:
    """Manage the vendor keys this host trusts."""


@trust_cmd.command("add")
@click.argument("key", type=click.Path(path_type=Path))
@click.pass_context
def trust_add(ctx: click.Context, key: Path) -> None:
    """Trust a vendor public key."""
    host = host_of(ctx)
    host.init()
    vk = load_verify_key(key)
    TrustStore(host.trust).add(vk)
    click.echo(f"trusted {vk.keyid} ({vk.algorithm})")


@trust_cmd.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def trust_list(ctx: click.Context, as_json: bool) -> None:
    """Trusted keys, revoked key ids and the signature threshold."""
    store = TrustStore(host_of(ctx).trust)
    keys, revoked, threshold = store.keys(), sorted(store.revoked()), store.threshold()
    if as_json:
        emit_json({"keys": [{"keyid": k.keyid, "algorithm": k.algorithm} for k in keys], "revoked": revoked,
                   "threshold": threshold})
        return
    for k in keys:
        click.echo(f"{k.keyid}  {k.algorithm}")
    for keyid in revoked:
        click.echo(f"{keyid}  revoked")
    click.echo(f"signatures required: {threshold}")


@trust_cmd.command("remove")
@click.argument("keyid")
@click.pass_context
def trust_remove(ctx: click.Context, keyid: str) -> None:
    """Stop trusting a key (it may be added again)."""
    store = TrustStore(host_of(ctx).trust)
    full = store.find(keyid)
    store.remove(full)
    click.echo(f"removed {full}")


@trust_cmd.command("revoke")
@click.argument("keyid")
@click.pass_context
def trust_revoke(ctx: click.Context, keyid: str) -> None:
    """Revoke a key for good: its signatures never count again on this host."""
    host = host_of(ctx)
    store = TrustStore(host.trust)
    full = store.find(keyid)
    store.revoke(full)
    host.record("revoked", keyid=full)
    click.echo(f"revoked {full}")


@trust_cmd.command("reset-clock")
@click.option("--yes", is_flag=True, required=True, help="Confirm: expiry is judged by this host's clock again.")
@click.pass_context
def trust_reset_clock(ctx: click.Context, yes: bool) -> None:
    """Set aside the latest install time, which expiry is never judged before: for a host
    whose clock was once wrong (far in the future). Recorded in the host history."""
    host = host_of(ctx)
    host.init()
    now = now_utc()
    old = TrustStore(host.trust).reset_clock_floor(now)
    host.record("clock-reset", previous=format_time(old) if old else None, to=format_time(now))
    click.echo(f"expiry is judged from {format_time(now)} on (it was {format_time(old) if old else 'the clock'})")


@trust_cmd.command("threshold")
@click.argument("count", type=int)
@click.pass_context
def trust_threshold(ctx: click.Context, count: int) -> None:
    """Require COUNT distinct trusted signatures on every bundle."""
    TrustStore(host_of(ctx).trust).set_threshold(count)
    click.echo(f"bundles now need {count} trusted signature(s)")


@click.group("store")
def store_cmd() -> None:
    """The content store: every verified blob of every application."""


@store_cmd.command("verify")
@click.option("--repair", "bundle", type=click.Path(path_type=Path), default=None,
              help="Put damaged or missing blobs back from this bundle (verified like an install).")
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
              help="Trusted vendor key for --repair (default: the keys in ROOT/trust).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def store_verify(ctx: click.Context, bundle: Path | None, keys: tuple[Path, ...], as_json: bool) -> None:
    """Re-hash every stored blob and look for every blob a kept release needs; exit 4 if any
    is damaged or missing (and --repair could not put it back)."""
    host = host_of(ctx)
    reporter = reporter_for(ctx, as_json)
    with host.lock(60):
        report = storecheck.verify(host, reporter)
        repaired = 0
        if bundle is not None and report.wanted:
            trusted = trusted_keys(host, [load_verify_key(k) for k in keys])
            repaired = storecheck.repair(host, bundle, report.wanted, trusted, reporter)
            report = storecheck.verify(host, reporter)
    listed = ", ".join(d[:19] for d in sorted(report.wanted)[:3])
    problem = f"{len(report.wanted)} blob(s) damaged or missing: {listed}; {StoreDamaged.FIX}" if report.wanted else ""
    if as_json:   # one document, the problem in it (not a second one from the error path)
        emit_json({"checked": report.checked, "damaged": report.damaged, "missing": report.missing,
                   "repaired": repaired, **({"error": problem, "exit": 4} if problem else {})})
        ctx.exit(4 if problem else 0)
    click.echo(f"{report.checked} blob(s) checked; {len(report.damaged)} damaged, {len(report.missing)} missing"
               + (f"; {repaired} put back from {bundle}" if bundle is not None else ""))
    if problem:
        raise StoreDamaged(problem)


@click.command("inventory")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def inventory_cmd(ctx: click.Context, output: Path) -> None:
    """List the blobs and releases this host holds, for the vendor's `build --delta-from`."""
    doc = inventory(host_of(ctx))
    write_atomic(output, json.dumps(doc, indent=1).encode())
    click.echo(f"wrote {output}: {len(doc['blobs'])} blob(s), releases "
               f"{', '.join(r['version'] for r in doc['releases']) or 'none'}")

