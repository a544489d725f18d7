"""What a person reads: summary.txt in the archive, and a one-page HTML report."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jinja2
import markupsafe

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


# The one script the page runs: the log filter. The CSP allows exactly this script (by its
# hash) and nothing else, so nothing from a received archive can run even if it got past the
# escaping.
FILTER_SCRIPT = """
document.getElementById("filter").addEventListener("input", function (e) {
  var q = e.target.value.toLowerCase();
  document.querySelectorAll("details.log").forEach(function (d) {
    var hit = !q || d.textContent.toLowerCase().indexOf(q) >= 0;
    d.style.display = hit ? "" : "none";
    d.open = !!q && hit;
  });
});
"""
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(FILTER_SCRIPT.encode()).digest()).decode()

# A received archive is hostile input: anyone with the vendor's public age key can make one.
# Every field goes through the template's autoescaping.
PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; script-src '{{ script_hash }}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Satchel diagnostics: {{ host.hostname }}</title>
<style>
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1f2328;
       overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; table-layout: fixed; }
td, th { border-bottom: 1px solid #d0d7de; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; white-space: nowrap; } code { font-size: 12px; } td.when { white-space: nowrap; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; padding: .6rem; font-size: 12px;
      max-height: 30rem; overflow-y: auto; margin: .3rem 0 1rem; }
.meta { color: #57606a; } .pass { color: #1a7f37; } .warn { color: #9a6700; } .fail { color: #cf222e; }
tr.bad td { background: #ffebe9; } details { margin: .3rem 0; } summary { cursor: pointer; }
input#filter { width: 100%; padding: .4rem; font: inherit; margin-bottom: .5rem; }
</style></head><body>
<h1>Satchel diagnostics</h1>
<p class="meta">Host <b>{{ host.hostname or "?" }}</b> ({{ host.system }} {{ host.release }}), collected
{{ collected_at }} by Satchel {{ state.satchel_version or "?" }}. Application <b>{{ state.app or "none" }}</b>,
current release <b>{{ current or "none" }}</b>{% if release %}, bundle {{ release.manifest_digest }} signed by
{{ release.signers | join(", ") }}{% endif %}. {{ hidden }} value(s) redacted.</p>
<h2>Summary</h2>
<p>{{ counts.fail }} fail, {{ counts.warn }} warn, {{ counts.pass }} pass.</p>
<h2>Findings</h2>
<table><colgroup><col style="width:6rem"><col style="width:14rem"><col></colgroup>
<tr><th>status</th><th>check</th><th>explanation</th></tr>
{% for f in findings %}<tr><td><b class="{{ f.status }}">{{ f.label }}</b></td><td>{{ f.check }}</td>
<td>{{ f.message }}</td></tr>
{% endfor %}</table>
{% if drift %}<h2>Drift</h2>
<table><tr><th>service</th><th>container</th><th>kind</th><th>detail</th></tr>
{% for d in drift %}<tr class="bad"><td>{{ d.service }}</td><td>{{ d.container }}</td><td>{{ d.kind }}</td>
<td>{{ d.detail }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Release timeline (newest first)</h2>
<table><colgroup><col style="width:13rem"><col style="width:9rem"><col style="width:12rem"><col></colgroup>
<tr><th>time (UTC)</th><th>event</th><th>version</th><th>detail</th></tr>
{% for e in history %}<tr{% if e.event in ("failed", "interrupted", "expired-rollback") %} class="bad"{% endif %}>
<td class="when">{{ e.time }}</td><td>{{ e.event }}</td><td>{{ e.version or "" }}</td>
<td>{{ e.reason or e.previous or "" }}</td></tr>
{% endfor %}</table>
{% if config_diff %}<h2>Configuration since {{ previous }}</h2>
<table><tr><th>setting</th><th>{{ previous }}</th><th>{{ current }}</th></tr>
{% for name, old, new in config_diff %}<tr><td>{{ name }}</td><td>{{ old }}</td><td>{{ new }}</td></tr>
{% endfor %}</table>{% endif %}
{% if reports %}<h2>Rollback reports</h2>
{% for name, text in reports %}<details open><summary>{{ name }}</summary><pre>{{ text }}</pre></details>
{% endfor %}{% endif %}
<h2>Containers</h2>
<table><colgroup><col><col style="width:7rem"><col style="width:7rem"><col style="width:5rem"><col></colgroup>
<tr><th>name</th><th>state</th><th>health</th><th>restarts</th><th>image</th></tr>
{% for c in containers %}<tr{% if c.status != "running" or c.health == "unhealthy" %} class="bad"{% endif %}>
<td>{{ c.name }}</td><td>{{ c.status }}</td><td>{{ c.health or "-" }}</td><td>{{ c.restart_count }}</td>
<td><code>{{ c.image }}</code>
{% for out in c.health_log if out %}<pre>health probe: {{ out }}</pre>{% endfor %}</td></tr>
{% else %}<tr><td colspan="5">no containers found</td></tr>
{% endfor %}</table>
<h2>Logs</h2>
<input id="filter" type="search" placeholder="filter the logs">
{% for name, text in logs %}<details class="log"><summary>{{ name }}</summary><pre>{{ text }}</pre></details>
{% endfor %}
{% if errors %}<h2>Not collected</h2><ul>
{% for e in errors %}<li>{{ e.collector }}: {{ e.error }}</li>
{% endfor %}</ul>{% endif %}
<script>{{ script }}</script>
</body></html>
""")
LOG_TAIL = 200   # lines of each log on the page (the archive has them all)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _texts(files: dict[str, bytes], prefix: str, tail: int | None = None) -> list[tuple[str, str]]:
    out = []
    for name in sorted(n for n in files if n.startswith(prefix)):
        text = files[name].decode(errors="replace")
        out.append((name[len(prefix):], "\n".join(text.splitlines()[-tail:]) if tail else text))
    return out


def html(facts: Any, findings: Any, errors: Any, redactions: Any, files: dict[str, bytes] | None = None) -> str:
    """The page for a received archive: every argument may be anything."""
    facts, files = _dict(facts), files or {}
    state, host = _dict(facts.get("satchel")), _dict(facts.get("host"))
    shown = [{**f, "status": status(f), "label": ICON.get(status(f), "?")} for f in _dicts(findings)]
    hidden = sum(int(r["count"]) for r in _dicts(redactions) if str(r.get("count", "")).isdigit())
    history = list(reversed([e for e in _dicts(state.get("history")) if e.get("event") != "switch"]))
    current, releases = state.get("current"), _dict(state.get("releases"))
    previous, diff = _config_diff(releases, history, current)
    return PAGE.render(host=host, state=state, collected_at=facts.get("collected_at"), current=current,
                       release=_dict(releases.get(str(current))) or None, hidden=hidden, findings=shown,
                       counts={s: sum(1 for f in shown if f["status"] == s) for s in ICON}, history=history,
                       drift=_dicts(facts.get("drift")), previous=previous, config_diff=diff,
                       reports=_texts(files, "satchel/reports/"), containers=_dicts(facts.get("containers")),
                       logs=_texts(files, "docker/logs/", LOG_TAIL) + _texts(files, "satchel/logs/", LOG_TAIL),
                       errors=_dicts(errors), script=markupsafe.Markup(FILTER_SCRIPT),
                       script_hash=SCRIPT_HASH)


def _config_diff(releases: dict[str, Any], history: list[dict[str, Any]], current: Any
                 ) -> tuple[Any, list[tuple[str, Any, Any]]]:
    """The release before the current one (newest-first history), and each public setting
    whose value differs between the two."""
    previous = next((e.get("version") for e in history if e.get("event") in ("installed", "rolled-back", "configured")
                     and e.get("version") not in (None, current)), None)

    def values(version: Any) -> dict[str, Any]:
        return _dict(_dict(_dict(_dict(releases.get(str(version))).get("info")).get("config")).get("values"))

    old, new = values(previous), values(current)
    return previous, [(k, old.get(k, "(unset)"), new.get(k, "(unset)")) for k in sorted(set(old) | set(new))
                      if old.get(k) != new.get(k)]


def status(finding: dict[str, Any]) -> str:
    """A finding's status as one of pass/warn/fail, or "unknown" (a received archive may say anything)."""
    value = finding.get("status")
    return value if value in ICON else "unknown"
