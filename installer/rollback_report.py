"""The rollback report written when a release fails its health check: which services
failed, their last log lines (redacted), and the configuration difference to the previous
release (secrets only as changed/unchanged)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bundler.errors import SatchelError
from bundler.oci.layout import write_atomic

from . import releases
from .diagnostics.collect import learn_secrets
from .diagnostics.redact import Redactor
from .hooks import HookResult
from .state import App
from .targets import for_release, staged_target, watched_target


def gather(app: App, failed: releases.Release, previous: str | None, detail: str,
           hook_results: Sequence[HookResult] = ()) -> list[str]:
    """A guess at the cause, which services failed, their last log lines, the hooks' output, and
    the configuration difference to the previous release (secrets only as changed/unchanged):
    read while the failed containers still exist, raw; `write` redacts it after the previous
    release is back."""
    old = releases.load(app, previous) if previous else None
    envs = [_env_values(r) for r in (failed, old) if r is not None]
    secret = {s.name for s in failed.manifest().settings if s.secret}
    lines = [f"rollback report: {failed.version} ({failed.path.name}) failed: {detail}"]
    if staged := staged_target(failed):
        traffic = staged.traffic(failed)
        mine = next((c for c, r in traffic["colours"].items() if r == failed.path.name), None)
        lines.append(f"  blue-green: {failed.path.name} ran in {mine or 'no'} colour; "
                     + ("it had the traffic" if mine and mine == traffic["live"] else
                        f"the traffic stayed with {traffic['live'] or 'nothing'}: no request reached it"))
    for result in hook_results:
        lines.append(f"  {result.phase} hook {'succeeded' if result.ok else 'failed'}; its last output:")
        lines += [f"    {line}" for line in result.output.splitlines()]
    try:
        bad = [s for s in for_release(failed).services(failed)
               if s.get("state") != "running" or s.get("health") not in ("", "healthy", "ready")]
        lines += [f"  service {s['service']}: {s['state']} {s.get('health') or ''}".rstrip() for s in bad]
        lines += _containers(failed)
        for service, text in for_release(failed).logs(failed, {str(s["service"]) for s in bad}, 20).items():
            lines.append(f"  last log lines of {service}:")
            lines += [f"    {line}" for line in text.splitlines()[-20:]]
    except SatchelError as exc:
        lines.append(f"  (services could not be listed: {exc})")
    new_values = (failed.info.config or {}).get("values", {})
    old_values = (old.info.config or {}).get("values", {}) if old else {}
    changes = []
    for name in sorted(set(new_values) | set(old_values)):
        if name in secret:
            if len(envs) == 2 and envs[0].get(name) != envs[1].get(name):
                changes.append(f"  {name}: (secret changed)")
        elif new_values.get(name) != old_values.get(name):
            changes.append(f"  {name}: {old_values.get(name, '(unset)')} -> {new_values.get(name, '(unset)')}")
    lines += ([f"configuration changes since {previous}:", *changes] if changes else
              [f"no configuration change since {previous}" if previous else "no previous release"])
    lines.insert(1, f"  likely cause: {cause(detail, bool(changes))}")
    return lines


def _containers(release: releases.Release) -> list[str]:
    """Each container's engine facts: state, exit code, restarts, OOM kill."""
    target = watched_target(release)
    out = []
    for attrs in target.containers(release) if target else []:
        state = attrs.get("State") or {}
        out.append(f"  container {str(attrs.get('Name', '?')).lstrip('/')}: {state.get('Status')}, exit code "
                   f"{state.get('ExitCode')}, restarted {attrs.get('RestartCount', 0)} times"
                   + (", killed: out of memory" if state.get("OOMKilled") else ""))
    return out


# (what the failure says, the cause named): the first that matches wins.
_CAUSES = (
    (("out of memory",), "out of memory (a container was OOM-killed): raise its memory limit or the host's memory"),
    (("crash loop",), "crash loop: a service keeps exiting at start (its log lines below say why)"),
    (("hook failed",), "a failing hook (its output below)"),
    (("address already in use", "port is already allocated"), "port clash: a published port is taken on this host"),
    (("manifest unknown", "pull access denied", "no such image", "not found: manifest"),
     "image missing from the registry Satchel pulled from"),
    (("health check failing", "not healthy within"), "a failing health probe"),
    (("exited with code",), "a service exited with an error"),
)


def cause(detail: str, config_changed: bool) -> str:
    """One line: the most likely cause of a failed switch, from what failed."""
    text = detail.lower()
    found = next((name for needles, name in _CAUSES if any(n in text for n in needles)), None)
    if found and config_changed:
        return f"{found}; the configuration changed too (below)"
    return found or ("a configuration change (below)" if config_changed else "unknown (see the lines below)")


def write(app: App, failed: releases.Release, lines: list[str]) -> str:
    """The report, redacted whole (it is printed and may be sent to the vendor), in a private
    file; returns its text."""
    redactor = Redactor()
    learn_secrets(redactor, app)
    text = redactor.redact("\n".join(lines) + "\n", "report")
    report = app.reports / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{failed.path.name}.txt"
    write_atomic(report, text.encode(), mode=0o600)
    app.record("report", version=failed.path.name, path=str(report))
    return text


def _env_values(release: releases.Release) -> dict[str, str]:
    try:
        return release.settings()
    except SatchelError:
        return {}
