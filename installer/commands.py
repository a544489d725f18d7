"""Customer commands: install, rollback, status, history, trust. Thin over installer.install."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bundler.errors import SpecError
from bundler.oci.layout import write_atomic
from bundler.output import emit_json
from bundler.progress import Reporter
from bundler.targets import TARGETS
from signing.keys import load_verify_key

from .config import SiteConfig, parse_assignments, read_import, set_site_values
from .config import show as show_config
from .configure import apply_config
from .diagnostics.cli import diagnostics
from .install import install, rollback
from .options import InstallOptions, Outcome
from .state import Root
from .status import inventory, status
from .targets.helm import HelmSettings
from .truststore import TrustStore


def _root(ctx: click.Context) -> Root:
    return Root(Path(ctx.obj["root"]))


def _reporter(ctx: click.Context, as_json: bool, log: Callable[[str], None] | None = None) -> Reporter:
    return Reporter(quiet=ctx.obj.get("quiet", False) or as_json, log=log)


def _logged(ctx: click.Context, command: str, run: Callable[[Root, Reporter], Outcome], as_json: bool,
            detail: str = "") -> Outcome:
    """Run an install or rollback with its own log file; print the outcome as JSON if asked."""
    root = _root(ctx)
    with root.run_log(command) as log:
        if detail:
            log(detail)
        out = run(root, _reporter(ctx, as_json, log))
        log(f"result: {out.action} {out.version}")
    if as_json:
        emit_json(out.__dict__)
    return out


_deploy_options = [
    click.option("--timeout", "wait_timeout", type=click.IntRange(1), default=120, show_default=True,
                 help="Seconds to wait for the services to be healthy."),
    click.option("--wait", "lock_wait", type=float, default=0, help="Wait this long for another satchel run."),
    click.option("--registry", default=None, help="Push to this existing registry (HOST[:PORT]) instead of "
                 "the managed one; credentials from Docker's config.json."),
    click.option("--registry-insecure", is_flag=True, help="Allow plain HTTP to --registry."),
    click.option("--registry-ca", type=click.Path(exists=True, dir_okay=False), help="CA file for --registry."),
    click.option("--json", "as_json", is_flag=True),
]


def deploy_options(fn: Any) -> Any:
    for option in reversed(_deploy_options):
        fn = option(fn)
    return fn


@click.command("install")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
              help="Trusted vendor key (default: the keys in ROOT/trust).")
@click.option("--allow-downgrade", is_flag=True, help="Install even if older than the installed release.")
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
def install_cmd(ctx: click.Context, bundle: Path, keys: tuple[Path, ...], allow_downgrade: bool, keep: int,
                project: str | None, target: str | None, values: tuple[Path, ...], sets: tuple[str, ...],
                namespace: str, kubeconfig: str | None, render_only: Path | None, wait_timeout: int,
                lock_wait: float, registry: str | None, registry_insecure: bool, registry_ca: str | None,
                as_json: bool) -> None:
    """Verify BUNDLE, load its images and switch the application to it."""
    opts = InstallOptions(keys=[load_verify_key(k) for k in keys], registry=registry,
                          registry_insecure=registry_insecure, registry_ca=registry_ca,
                          allow_downgrade=allow_downgrade, wait_timeout=wait_timeout, keep=keep,
                          project=project, lock_wait=lock_wait, target=target, render_only=render_only,
                          helm=HelmSettings(namespace, values, sets, kubeconfig),
                          settings=parse_assignments(sets, "--set"))
    out = _logged(ctx, "install", lambda root, reporter: install(root, bundle, opts, reporter), as_json,
                  f"bundle {bundle.resolve()}")
    if not as_json and out.action == "already-installed":
        click.echo(f"{out.version} is already installed and healthy; nothing to do")
    elif not as_json and out.action == "rendered":
        click.echo(f"rendered {out.version} into {render_only}; {out.pushed_blobs} blob(s) pushed; nothing switched")
    elif not as_json:
        click.echo(f"installed {out.version}" + (f" (was {out.previous})" if out.previous else "")
                   + f"; {out.pushed_blobs} blob(s) pushed"
                   + (f"; removed old release(s) {', '.join(out.removed)}" if out.removed else ""))


@click.command("rollback")
@click.option("--to", "to", default=None, help="Version to go back to (default: the previous release); "
              "the current version re-applies it.")
@deploy_options
@click.pass_context
def rollback_cmd(ctx: click.Context, to: str | None, wait_timeout: int, lock_wait: float, registry: str | None,
                 registry_insecure: bool, registry_ca: str | None, as_json: bool) -> None:
    """Switch back to an earlier release kept on this host."""
    opts = InstallOptions(registry=registry, registry_insecure=registry_insecure, registry_ca=registry_ca,
                          wait_timeout=wait_timeout, lock_wait=lock_wait)
    out = _logged(ctx, "rollback", lambda root, reporter: rollback(root, to, opts, reporter), as_json)
    if not as_json and out.action == "reapplied":
        click.echo(f"re-applied {out.version}: its services are running and healthy")
    elif not as_json:
        click.echo(f"rolled back to {out.version} (was {out.previous})")


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """The current release and the state of its services."""
    root = _root(ctx)
    info = status(root)
    current = info["current"]
    if as_json:
        emit_json(info)
        return
    if not current:
        click.echo(f"no release installed under {root.path}")
        return
    click.echo(f"{info['name']} {current}  (project {info['project']}, registry {info['registry']})")
    for s in info["services"]:
        click.echo(f"  {s['service']:<16} {s['state']:<10} {s['health']:<10} {s['image']}")
    others = [v for v in info["releases"] if v != current]
    click.echo(f"kept releases: {', '.join(others) or 'none'}")
    if info["pending"]:
        click.echo(f"interrupted operation pending: {info['pending']} (the next command finishes it)")


@click.command("history")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every install, switch, failure and rollback on this host."""
    entries = _root(ctx).history()
    if as_json:
        emit_json(entries)
        return
    for e in entries:
        extra = " ".join(f"{k}={v}" for k, v in sorted(e.items()) if k not in ("time", "event", "version"))
        click.echo(f"{e['time']}  {e['event']:<12} {e.get('version') or '':<12} {extra}".rstrip())


@click.group("trust")
def trust_cmd() -> None:
    """Manage the vendor keys this host trusts."""


@trust_cmd.command("add")
@click.argument("key", type=click.Path(path_type=Path))
@click.pass_context
def trust_add(ctx: click.Context, key: Path) -> None:
    """Trust a vendor public key."""
    root = _root(ctx)
    root.init()
    vk = load_verify_key(key)
    TrustStore(root.trust).add(vk)
    click.echo(f"trusted {vk.keyid} ({vk.algorithm})")


@trust_cmd.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def trust_list(ctx: click.Context, as_json: bool) -> None:
    """Trusted keys, revoked key ids and the signature threshold."""
    store = TrustStore(_root(ctx).trust)
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
    store = TrustStore(_root(ctx).trust)
    full = store.find(keyid)
    store.remove(full)
    click.echo(f"removed {full}")


@trust_cmd.command("revoke")
@click.argument("keyid")
@click.pass_context
def trust_revoke(ctx: click.Context, keyid: str) -> None:
    """Revoke a key for good: its signatures never count again on this host."""
    root = _root(ctx)
    full = keyid if len(keyid) == 64 else TrustStore(root.trust).find(keyid)
    root.init()
    TrustStore(root.trust).revoke(full)
    root.record("revoked", keyid=full)
    click.echo(f"revoked {full}")


@trust_cmd.command("threshold")
@click.argument("count", type=int)
@click.pass_context
def trust_threshold(ctx: click.Context, count: int) -> None:
    """Require COUNT distinct trusted signatures on every bundle."""
    TrustStore(_root(ctx).trust).set_threshold(count)
    click.echo(f"bundles now need {count} trusted signature(s)")


@click.group("config")
def config_cmd() -> None:
    """Site configuration: values kept across upgrades, secrets apart (docs/CONFIGURATION.md)."""


@config_cmd.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.pass_context
def config_set(ctx: click.Context, assignments: tuple[str, ...]) -> None:
    """Set site values (not secrets); they apply from the next install or config apply."""
    root = _root(ctx)
    root.init()
    values = parse_assignments(assignments, "config set")
    set_site_values(root, values)
    click.echo(f"set {', '.join(sorted(values))}; run satchel config apply to use them now")


@config_cmd.command("unset")
@click.argument("name")
@click.pass_context
def config_unset(ctx: click.Context, name: str) -> None:
    """Remove a site value or secret."""
    if not SiteConfig(_root(ctx)).unset(name):
        raise SpecError(f"{name} is not set on this host")
    click.echo(f"unset {name}")


@config_cmd.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_context
def config_import(ctx: click.Context, file: Path) -> None:
    """Set site values from a YAML/JSON mapping or NAME=VALUE lines."""
    ctx.invoke(config_set, assignments=tuple(f"{k}={v}" for k, v in read_import(file).items()))


@config_cmd.command("set-secret")
@click.argument("name")
@click.pass_context
def config_set_secret(ctx: click.Context, name: str) -> None:
    """Set a secret from standard input (never from the command line)."""
    root = _root(ctx)
    root.init()
    value = str(click.prompt(name, hide_input=True)) if sys.stdin.isatty() else sys.stdin.read().rstrip("\n")
    if not value:
        raise SpecError(f"no value for {name} on standard input")
    SiteConfig(root).set_secret(name, value)
    click.echo(f"secret {name} set; run satchel config apply to use it now")


@config_cmd.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Effective values for the current release and the layer each comes from."""
    rows = show_config(_root(ctx))
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<24} {r['value'] if r['value'] is not None else '-'!s:<24} {r['layer']}")


@config_cmd.command("apply")
@click.option("--set", "sets", multiple=True, help="NAME=VALUE for this release only.")
@deploy_options
@click.pass_context
def config_apply(ctx: click.Context, sets: tuple[str, ...], wait_timeout: int, lock_wait: float,
                 registry: str | None, registry_insecure: bool, registry_ca: str | None, as_json: bool) -> None:
    """Make a new release with the current bundle and the current configuration."""
    opts = InstallOptions(wait_timeout=wait_timeout, lock_wait=lock_wait, settings=parse_assignments(sets, "--set"))
    out = _logged(ctx, "config-apply", lambda root, reporter: apply_config(root, opts, reporter), as_json)
    if not as_json:
        click.echo(f"configuration applied as release {out.version} (was {out.previous})")


@click.command("inventory")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def inventory_cmd(ctx: click.Context, output: Path) -> None:
    """List the blobs and releases this host holds, for the vendor's `build --delta-from`."""
    doc = inventory(_root(ctx))
    write_atomic(output, json.dumps(doc, indent=1).encode())
    click.echo(f"wrote {output}: {len(doc['blobs'])} blob(s), releases "
               f"{', '.join(r['version'] for r in doc['releases']) or 'none'}")


COMMANDS = [install_cmd, rollback_cmd, status_cmd, history_cmd, trust_cmd, diagnostics, inventory_cmd, config_cmd]
