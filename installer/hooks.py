"""The vendor's one-off jobs around a switch (bundler/lifecycle.py HOOKS), run by the release's
target from the release's own images. Their output is redacted before it reaches the run log
or a rollback report: a migration may well print a connection string."""

from __future__ import annotations

from dataclasses import dataclass

from bundler.progress import Reporter

from . import faults
from .diagnostics.collect import learn_secrets
from .diagnostics.redact import Redactor
from .releases import Release
from .state import App
from .targets import data_target

TAIL = 40


@dataclass(frozen=True)
class HookResult:
    phase: str
    ok: bool
    output: str          # redacted, the last TAIL lines

    @property
    def detail(self) -> str:
        last = (self.output.splitlines() or ["no output"])[-1]
        return f"the {self.phase} hook failed: {last}"


def declared(release: Release, phase: str) -> bool:
    return phase in release.manifest().lifecycle.hooks and data_target(release) is not None


def run(app: App, release: Release, phase: str, reporter: Reporter) -> HookResult | None:
    """Run the release's hook for `phase`, if it declares one (and its target runs hooks)."""
    hook = release.manifest().lifecycle.hooks.get(phase)
    target = data_target(release)
    if hook is None or target is None:
        return None
    reporter.step(f"running the {phase} hook of {release.version} ({hook.service}: {' '.join(hook.command)})")
    faults.point("during-hook")
    ok, output = target.run_hook(release, hook)
    redactor = Redactor()
    learn_secrets(redactor, app)
    tail = "\n".join(redactor.redact(output, f"{phase} hook").splitlines()[-TAIL:])
    if reporter.log:
        reporter.log(f"{phase} hook {'succeeded' if ok else 'FAILED'}; its output:\n{tail}")
    return HookResult(phase, ok, tail)
