"""What a person reads: summary.txt in the archive, and a one-page HTML report."""

from __future__ import annotations

from typing import Any

import jinja2

ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def summary(facts: dict[str, Any], findings: list[dict[str, str]], errors: list[dict[str, str]]) -> str:
    state = facts.get("satchel") or {}
    host = facts.get("host") or {}
    lines = [f"Satchel diagnostics, collected {facts.get('collected_at')} on {host.get('hostname', '?')}",
             f"current release: {state.get('current') or 'none'}", "", "findings:"]
    lines += [f"  [{ICON.get(status(f), '?')}] {f.get('message')}" for f in findings]
    counts = {s: sum(1 for f in findings if status(f) == s) for s in ICON}
    lines += ["", f"{counts['fail']} fail, {counts['warn']} warn, {counts['pass']} pass"]
    if errors:
        lines += ["", "not collected:"] + [f"  {e['collector']}: {e['error']}" for e in errors]
    return "\n".join(lines) + "\n"


# A received archive is hostile input: anyone with the vendor's public age key can make one.
# Every field goes through the template's autoescaping, and the page may run no script.
PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Satchel diagnostics: {{ host.hostname }}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
td, th { border-bottom: 1px solid #d0d7de; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } code { font-size: 12px; word-break: break-all; }
.meta { color: #57606a; } .pass { color: #1a7f37; } .warn { color: #9a6700; } .fail { color: #cf222e; }
</style></head><body>
<h1>Satchel diagnostics</h1>
<p class="meta">Host <b>{{ host.hostname or "?" }}</b> ({{ host.system }} {{ host.release }}), collected
{{ collected_at }}. Current release: <b>{{ current or "none" }}</b>. {{ hidden }} value(s) redacted.</p>
<h2>Findings</h2>
<table><tr><th>status</th><th>check</th><th>explanation</th></tr>
{% for f in findings %}<tr><td><b class="{{ f.status }}">{{ f.label }}</b></td><td>{{ f.check }}</td>
<td>{{ f.message }}</td></tr>
{% endfor %}</table>
<h2>Release timeline</h2>
<table><tr><th>time (UTC)</th><th>event</th><th>version</th><th>detail</th></tr>
{% for e in history %}<tr><td>{{ e.time }}</td><td>{{ e.event }}</td><td>{{ e.version or "" }}</td>
<td>{{ e.reason or e.previous or "" }}</td></tr>
{% endfor %}</table>
<h2>Containers</h2>
<table><tr><th>name</th><th>state</th><th>health</th><th>restarts</th><th>image</th></tr>
{% for c in containers %}<tr><td>{{ c.name }}</td><td>{{ c.status }}</td><td>{{ c.health or "-" }}</td>
<td>{{ c.restart_count }}</td><td><code>{{ c.image }}</code></td></tr>
{% else %}<tr><td colspan="5">no containers found</td></tr>
{% endfor %}</table>
{% if errors %}<h2>Not collected</h2><ul>
{% for e in errors %}<li>{{ e.collector }}: {{ e.error }}</li>
{% endfor %}</ul>{% endif %}
</body></html>
""")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def html(facts: dict[str, Any], findings: Any, errors: Any, redactions: Any) -> str:
    """The page for a received archive's facts: every argument may be anything."""
    state, host = _dict(facts.get("satchel")), _dict(facts.get("host"))
    shown = [{**f, "status": status(f), "label": ICON.get(status(f), "?")} for f in _dicts(findings)]
    hidden = sum(int(r["count"]) for r in _dicts(redactions) if str(r.get("count", "")).isdigit())
    return PAGE.render(host=host, collected_at=facts.get("collected_at"), current=state.get("current"),
                       hidden=hidden, findings=shown, history=_dicts(state.get("history")),
                       containers=_dicts(facts.get("containers")), errors=_dicts(errors))


def status(finding: dict[str, Any]) -> str:
    """A finding's status as one of pass/warn/fail, or "unknown" (a received archive may say anything)."""
    value = finding.get("status")
    return value if value in ICON else "unknown"
