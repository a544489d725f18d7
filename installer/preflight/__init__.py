"""Preflight: will this bundle fit this host? Run by `satchel preflight` and by every install
after the bundle is verified and before anything changes.

Each check is a module of this package with `check(ctx) -> Iterable[Result]`, registered in
CHECKS: the vendor's requirements (requirements.py, judged by bundler/requirements.py) and the
checks Satchel derives from the bundle (ports the compose files publish, the managed
registry's port, the images' architecture, the clock). A strict failure refuses (exit 4) with
one line per failed check: what was wanted, what was found, and the fix; a warn failure is
printed and the install goes on."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from bundler.errors import EnvironmentProblem
from bundler.progress import Reporter

from .model import Context, Result

__all__ = ["CHECKS", "Context", "PreflightFailed", "Result", "enforce", "run"]

CHECKS = ("requirements", "ports", "registry_port", "architecture", "clock")


class PreflightFailed(EnvironmentProblem):
    """A strict check failed (exit 4)."""


def run(ctx: Context) -> list[Result]:
    out: list[Result] = []
    for name in CHECKS:
        module = importlib.import_module(f"{__name__}.{name}")
        out.extend(module.check(ctx))
    return out


def enforce(results: Iterable[Result], reporter: Reporter) -> None:
    """Log every result; warn about failed warn-level ones; refuse if a strict one failed."""
    failed = []
    for r in results:
        if reporter.log:
            reporter.log(f"preflight: {r.line()}")
        if not r.ok and r.level == "warn":
            reporter.warn(f"preflight: {r.line()}")
        elif not r.ok:
            failed.append(r)
    if failed:
        raise PreflightFailed("preflight failed, nothing was changed:\n" + "\n".join(f"  {r.line()}" for r in failed))
