"""The rollback report written when a release fails its health check: which services
failed, their last log lines (redacted), and the configuration difference to the previous
release (secrets only as changed/unchanged)."""

from __future__ import annotations

from datetime import UTC, datetime

from bundler.errors import SatchelError
from bundler.oci.layout import write_atomic

from . import releases
from .diagnostics.collect import learn_secrets
from .diagnostics.redact import Redactor
from .state import App
from .targets import for_release


def gather(app: App, failed: releases.Release, previous: str | None, detail: str) -> list[str]:
    """Which services failed, their last log lines, and the configuration difference to the
    previous release (secrets only as changed/unchanged): read while the failed containers
    still exist, raw; `write` redacts it after the previous release is back."""
    old = releases.load(app, previous) if previous else None
    envs = [_env_values(r) for r in (failed, old) if r is not None]
    secret = {s.name for s in failed.manifest().settings if s.secret}
    lines = [f"rollback report: {failed.version} ({failed.path.name}) failed: {detail}"]
    try:
        bad = [s for s in for_release(failed).services(failed)
               if s.get("state") != "running" or s.get("health") not in ("", "healthy", "ready")]
        lines += [f"  service {s['service']}: {s['state']} {s.get('health') or ''}".rstrip() for s in bad]
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
    return lines


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
