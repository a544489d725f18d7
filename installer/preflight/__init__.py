"""Preflight: will this bundle fit this host? Run by `satchel preflight` and by every install
after the bundle is verified and before anything changes.

Each check is a module of this package with `check(ctx) -> Iterable[Result]`, registered in
CHECKS: the vendor's requirements (requirements.py, judged by bundler/requirements.py) and the
checks Satchel derives from the bundle (ports the compose files publish, the managed
registry's port, the images' architecture, the clock) and the site policy on what the compose
files grant over the host (policy.py). A strict failure refuses (exit 4) with
one line per failed check: what was wanted, what was found, and the fix; a warn failure is
printed and the install goes on."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from bundler.errors import EnvironmentProblem
from bundler.progress import Reporter

from .model import Context, Result

__all__ = ["CHECKS", "Context", "PreflightFailed", "Result", "enforce", "run"]

CHECKS = ("requirements", "ports", "registry_port", "architecture", "clock", "policy")


class PreflightFailed(EnvironmentProblem):
    """A strict check failed (exit 4)."""


def run(ctx: Context, stage: str | None = None) -> list[Result]:
    """Every check, or those of one stage: "manifest" (the signed manifest is enough: run before
    any payload byte is read) or "content" (they read the verified compose files)."""
    out: list[Result] = []
    for name in CHECKS:
        module = importlib.import_module(f"{__name__}.{name}")
        if stage is None or getattr(module, "STAGE", "manifest") == stage:
            out.extend(module.check(ctx))
    return out


def enforce(results: Iterable[Result], reporter: Reporter) -> None:
    """Log every result; print each failed one (one line: wanted, found, fix); refuse if a
    strict one failed, else go on."""
    failed = []
    for r in results:
        if r.ok:
            if reporter.log:
                reporter.log(f"preflight: {r.line()}")
            continue
        reporter.warn(f"preflight: {r.line()}")
        if r.level == "strict":
            failed.append(r.check)
    if failed:
        raise PreflightFailed(f"preflight failed ({', '.join(failed)}), nothing was changed; "
                              "satchel preflight BUNDLE shows every check")
