"""satchel diagnostics [-o FILE] | diagnostics open FILE | diagnostics keygen --out NAME."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import click

from bundler.errors import BundleError, SpecError
from bundler.output import emit_json
from signing.grammar import parse_duration

from ..cli_common import app_option
from ..state import Host
from . import archive, report
from .create import create

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def parse_since(value: str | None) -> timedelta | None:
    if value is None:
        return None
    duration = parse_duration(value)
    if duration is None:
        raise SpecError(f"--since {value!r}: use a duration like 30m, 12h or 7d")
    return duration


@click.group("diagnostics", invoke_without_command=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Archive to write.")
@click.option("--since", default=None, help="Only logs from this long ago (30m, 12h, 7d); default all.")
@click.option("--redact", "patterns", multiple=True, help="Extra regular expression to hide (repeatable).")
@click.option("--encrypt-to", default=None, help="age recipient (age1...) or a file holding it.")
@click.option("--upload", default=None, help="HTTP PUT the archive to this URL (e.g. a pre-signed URL); "
              "off this host only https and with --encrypt-to.")
@click.option("--upload-insecure", is_flag=True, help="Allow --upload over plain http.")
@app_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def diagnostics(ctx: click.Context, output: Path | None, since: str | None, patterns: tuple[str, ...],
                encrypt_to: str | None, upload: str | None, upload_insecure: bool, app_name: str | None,
                as_json: bool) -> None:
    """Write a redacted support archive (open it with `satchel diagnostics open`)."""
    if ctx.invoked_subcommand is not None:
        return
    if output is None:
        raise click.UsageError("give -o FILE for the archive")
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise SpecError(f"--redact {p!r} is not a valid regular expression: {exc}") from None
    host = Host(Path(ctx.obj["root"]))
    # A host with no application still gets an archive: a broken host is when it matters most.
    app = host.select(app_name) if app_name or host.apps() else None
    made = create(host, app, output, since=parse_since(since), redact=list(patterns),
                  encrypt_to=encrypt_to, upload=upload, upload_insecure=upload_insecure)
    counts = {s: sum(1 for f in made.findings if f["status"] == s) for s in ("fail", "warn", "pass")}
    if as_json:
        emit_json({"archive": str(made.path), "findings": counts, "not_collected": made.errors,
                   "redactions": made.redactions, "encrypted": made.encrypted, "uploaded": made.uploaded})
        return
    click.echo(f"wrote {made.path}{' (encrypted)' if made.encrypted else ''}: {counts['fail']} fail, "
               f"{counts['warn']} warn, {counts['pass']} pass; {made.redactions} value(s) redacted"
               + (f"; not collected: {', '.join(e['collector'] for e in made.errors)}" if made.errors else "")
               + ("; uploaded" if made.uploaded else ""))


@diagnostics.command("open")
@click.argument("archive_path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--identity", type=click.Path(path_type=Path), help="The vendor's age identity (NAME.age).")
@click.option("--html", "html_out", type=click.Path(path_type=Path, dir_okay=False), help="Write an HTML report.")
@click.option("--json", "as_json", is_flag=True, help="Print analysis.json.")
def open_cmd(archive_path: Path, identity: Path | None, html_out: Path | None, as_json: bool) -> None:
    """Decrypt and check an archive, print its summary, optionally write an HTML report."""
    opened = archive.open_archive(archive_path, identity)
    analysis = opened.json("analysis.json")
    if not isinstance(analysis, dict):
        raise BundleError("the diagnostics archive's analysis.json is not an object")
    if html_out:
        facts, hidden = opened.json("facts.json"), opened.json("redaction-report.json")
        html_out.write_text(report.html(facts, analysis.get("findings"), analysis.get("errors"),
                                        hidden.get("hidden") if isinstance(hidden, dict) else [], opened.files))
    if as_json:
        emit_json(analysis)
    else:
        # Printed to the vendor's terminal: no control sequences from a received archive.
        text = opened.files.get("summary.txt", b"").decode(errors="replace")
        click.echo(CONTROL.sub("?", text), nl=False)
        if html_out:
            click.echo(f"report: {html_out}")


@diagnostics.command("keygen")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Writes OUT.age (secret identity, mode 0600) and OUT.age.pub (give this to customers).")
def keygen_cmd(out: Path) -> None:
    """Create the vendor's key pair for encrypted diagnostics."""
    private, public, rcpt = archive.keygen(out)
    click.echo(f"wrote {private} (keep it secret) and {public}\nrecipient {rcpt}")
