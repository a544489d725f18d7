"""What the customer commands share: the host and the application a command is about, the
options of every deploying command, and the run log each deploying command writes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bundler.output import emit_json
from bundler.progress import Reporter
from signing.grammar import parse_duration

from .options import Outcome
from .state import App, Host


def host_of(ctx: click.Context) -> Host:
    return Host(Path(ctx.obj["root"]))


def app_of(ctx: click.Context, name: str | None, new: bool = False) -> App:
    return host_of(ctx).select(name, new)


app_option = click.option("--app", "app_name", envvar="SATCHEL_APP", default=None, metavar="NAME",
                          help="The application [env SATCHEL_APP; default: the only one on this host].")


def reporter_for(ctx: click.Context, as_json: bool, log: Callable[[str], None] | None = None) -> Reporter:
    return Reporter(quiet=ctx.obj.get("quiet", False) or as_json, log=log)


def logged(ctx: click.Context, command: str, run: Callable[[Host, Reporter], Outcome], as_json: bool,
            detail: str = "") -> Outcome:
    """Run an install or rollback with its own log file; print the outcome as JSON if asked."""
    host = host_of(ctx)
    with host.run_log(command) as log:
        if detail:
            log(detail)
        out = run(host, reporter_for(ctx, as_json, log))
        log(f"result: {out.action} {out.app} {out.version}")
    if as_json:
        emit_json(out.__dict__)
    return out


class Duration(click.ParamType[float]):
    """90s, 5m, 2h, 365d — or bare seconds: one syntax for every duration on the command line."""

    name = "duration"

    def __init__(self, whole: bool = False) -> None:
        self.whole = whole          # whole seconds, at least 1 (timeouts handed to other programs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            duration = parse_duration(text)
            if duration is None:
                self.fail(f"{value!r} is not a duration (90s, 5m, 2h, 365d or seconds)", param, ctx)
            seconds = duration.total_seconds()
        if seconds < 0 or (self.whole and seconds < 1):
            self.fail(f"{value!r} is too short", param, ctx)
        return max(1, round(seconds)) if self.whole else seconds


DURATION, SECONDS = Duration(), Duration(whole=True)


DEPLOY_OPTIONS = [
    click.option("--timeout", "wait_timeout", type=SECONDS, default="120s", show_default=True,
                 help="How long to wait for the services to be healthy (90s, 5m or seconds)."),
    click.option("--wait", "lock_wait", type=DURATION, default=0, help="Wait this long for another satchel run."),
    click.option("--watch", type=DURATION, default=None,
                 help="After the switch, keep watching this long and roll back (data included) if the release "
                      "fails (default: the bundle's health policy; 0: no watch)."),
    click.option("--registry", default=None, help="Push to this existing registry (HOST[:PORT]) instead of "
                 "the managed one; credentials from Docker's config.json."),
    click.option("--registry-insecure", is_flag=True, help="Allow plain HTTP to --registry."),
    click.option("--registry-ca", type=click.Path(exists=True, dir_okay=False), help="CA file for --registry."),
    click.option("--json", "as_json", is_flag=True),
]


def deploy_options(fn: Any) -> Any:
    """The options every switching command takes, handed to it as one `deploy` mapping of
    InstallOptions fields (and `as_json` on its own)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, wait_timeout: int, lock_wait: float, watch: float | None, registry: str | None,
                registry_insecure: bool, registry_ca: str | None, **kwargs: Any) -> Any:
        deploy = {"wait_timeout": wait_timeout, "lock_wait": lock_wait, "registry": registry,
                  "registry_insecure": registry_insecure, "registry_ca": registry_ca,
                  "watch": None if watch is None else int(watch)}
        return fn(*args, deploy=deploy, **kwargs)

    for option in reversed(DEPLOY_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
