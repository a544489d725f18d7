"""What a person reads: summary.txt in the archive, and a one-page HTML report."""

from __future__ import annotations

from html import escape
from typing import Any

ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def summary(facts: dict[str, Any], findings: list[dict[str, str]], errors: list[dict[str, str]]) -> str:
    state = facts.get("satchel") or {}
    host = facts.get("host") or {}
    lines = [f"Satchel diagnostics, collected {facts.get('collected_at')} on {host.get('hostname', '?')}",
             f"current release: {state.get('current') or 'none'}", "", "findings:"]
    lines += [f"  [{ICON[f['status']]}] {f['message']}" for f in findings]
    counts = {s: sum(1 for f in findings if f["status"] == s) for s in ICON}
    lines += ["", f"{counts['fail']} fail, {counts['warn']} warn, {counts['pass']} pass"]
    if errors:
        lines += ["", "not collected:"] + [f"  {e['collector']}: {e['error']}" for e in errors]
    return "\n".join(lines) + "\n"


def html(facts: dict[str, Any], findings: list[dict[str, str]], errors: list[dict[str, str]],
         redactions: list[dict[str, Any]]) -> str:
    state = facts.get("satchel") or {}
    host = facts.get("host") or {}
    colour = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}
    rows = "".join(f'<tr><td><b style="color:{colour[f["status"]]}">{ICON[f["status"]]}</b></td>'
                   f'<td>{escape(f["check"])}</td><td>{escape(f["message"])}</td></tr>' for f in findings)
    timeline = "".join(f'<tr><td>{escape(str(e.get("time")))}</td><td>{escape(str(e.get("event")))}</td>'
                       f'<td>{escape(str(e.get("version") or ""))}</td>'
                       f'<td>{escape(str(e.get("reason") or e.get("previous") or ""))}</td></tr>'
                       for e in state.get("history") or [])
    containers = "".join(f'<tr><td>{escape(str(c.get("name")))}</td><td>{escape(str(c.get("status")))}</td>'
                         f'<td>{escape(str(c.get("health") or "-"))}</td><td>{c.get("restart_count")}</td>'
                         f'<td><code>{escape(str(c.get("image")))}</code></td></tr>'
                         for c in facts.get("containers") or [])
    containers = containers or '<tr><td colspan="5">no containers found</td></tr>'
    missing = "".join(f"<li>{escape(e['collector'])}: {escape(e['error'])}</li>" for e in errors)
    hidden = sum(int(r["count"]) for r in redactions)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Satchel diagnostics: {escape(str(host.get('hostname', '')))}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }}
td, th {{ border-bottom: 1px solid #d0d7de; padding: .35rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }} code {{ font-size: 12px; word-break: break-all; }}
.meta {{ color: #57606a; }}
</style></head><body>
<h1>Satchel diagnostics</h1>
<p class="meta">Host <b>{escape(str(host.get('hostname', '?')))}</b> ({escape(str(host.get('system', '')))}
{escape(str(host.get('release', '')))}), collected {escape(str(facts.get('collected_at')))}.
Current release: <b>{escape(str(state.get('current') or 'none'))}</b>. {hidden} value(s) redacted.</p>
<h2>Findings</h2>
<table><tr><th>status</th><th>check</th><th>explanation</th></tr>{rows}</table>
<h2>Release timeline</h2>
<table><tr><th>time (UTC)</th><th>event</th><th>version</th><th>detail</th></tr>{timeline}</table>
<h2>Containers</h2>
<table><tr><th>name</th><th>state</th><th>health</th><th>restarts</th><th>image</th></tr>{containers}</table>
{"<h2>Not collected</h2><ul>" + missing + "</ul>" if missing else ""}
</body></html>
"""
