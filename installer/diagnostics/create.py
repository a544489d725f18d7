"""satchel diagnostics: collect -> redact every file -> analyse -> pack -> encrypt -> upload."""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from bundler.errors import EnvironmentProblem, SpecError
from bundler.oci.layout import fsync_dir
from bundler.oci.refs import is_loopback

from ..state import App, Host
from . import archive, report
from .analyze import analyze
from .collect import collect_all


@dataclass
class Created:
    path: Path
    findings: list[dict[str, str]]
    errors: list[dict[str, str]]
    redactions: int
    encrypted: bool
    uploaded: bool


def create(host: Host, app: App | None, output: Path, *, since: timedelta | None = None,
           redact: list[str] | None = None, encrypt_to: str | None = None, upload: str | None = None,
           upload_insecure: bool = False) -> Created:
    if upload:
        check_upload(upload, bool(encrypt_to), upload_insecure)
    if encrypt_to:
        archive.recipient(encrypt_to)  # a bad recipient fails before anything is collected
    c = collect_all(host, app, since, redact or [])
    findings = [f.to_json() for f in analyze(c.facts, c.errors)]
    # Every collected file passes the redactor; so do the generated ones built from facts.
    files = {name: c.redactor.redact(text, name) for name, text in c.files.items()}
    generated: dict[str, Any] = {"analysis.json": {"findings": findings, "errors": c.errors},
                                 "facts.json": c.facts}
    for name, data in generated.items():
        files[name] = c.redactor.redact(json.dumps(data, indent=2, sort_keys=True, default=str), name)
    files["summary.txt"] = c.redactor.redact(report.summary(c.facts, findings, c.errors), "summary.txt")
    redactions = c.redactor.summary()
    files["redaction-report.json"] = json.dumps({"rules": "values are never recorded", "hidden": redactions},
                                                indent=2)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        plain = Path(tmp) / "plain.tar.zst"
        with plain.open("wb") as out:
            archive.write(out, {k: v.encode() for k, v in files.items()})
        final = plain
        if encrypt_to:
            final = Path(tmp) / "encrypted.age"
            archive.encrypt(plain, final, encrypt_to)
        with final.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(final, output)
    fsync_dir(output.parent.resolve())
    uploaded = bool(upload) and put(output, upload or "")
    return Created(output, findings, c.errors, sum(int(str(r["count"])) for r in redactions), bool(encrypt_to),
                   uploaded)


def shown(url: str) -> str:
    """An upload URL as it may be printed: no credentials, no query (a pre-signed URL's signature)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def check_upload(url: str, encrypted: bool, insecure: bool) -> None:
    """Before anything is collected: off this host, only over https, and only encrypted
    (the archive is redacted, but it still describes the site)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"--upload {shown(url)}: give an http(s) URL")
    if is_loopback(f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname):
        return
    if parts.scheme != "https" and not insecure:
        raise SpecError(f"--upload {shown(url)} is plain http: use https, or pass --upload-insecure")
    if not encrypted:
        raise SpecError("--upload to another host needs --encrypt-to VENDOR.age.pub")


def put(path: Path, url: str, attempts: int = 4) -> bool:
    """HTTP PUT (pre-signed URL style) with bounded retries; the archive stays on disk either
    way. A redirect is not followed: it could lead anywhere, with the archive."""
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            with path.open("rb") as fh:
                resp = requests.put(url, data=fh, timeout=60, allow_redirects=False,
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Length": str(path.stat().st_size)})
            if 200 <= resp.status_code < 300:
                return True
            last = f"HTTP {resp.status_code}" + (" (a redirect, not followed)" if resp.is_redirect else "")
            if resp.status_code < 500 and resp.status_code != 429:
                break
        except requests.RequestException as exc:
            last = type(exc).__name__     # its text would repeat the URL, signature and all
        if attempt < attempts:
            time.sleep(0.5 * 2 ** attempt)
    raise EnvironmentProblem(f"upload of {path} to {shown(url)} failed ({last}); the archive is kept, "
                             "carry it out by hand")
