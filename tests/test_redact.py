"""Redaction rules, pure: each kind of secret is hidden and counted, ordinary text is kept."""

from __future__ import annotations

import pytest

from installer.diagnostics.redact import HIDDEN, Redactor
from tests.conftest import HOSTILE_COUNTS


@pytest.mark.parametrize("text,secret,kind", [
    ("DB_PASSWORD=hunter2-xyz", "hunter2-xyz", "key-value-secret"),
    ("api_key: 'abc123def456'", "abc123def456", "key-value-secret"),
    ('{"client_secret": "s3cr3t value"}', "s3cr3t value", "json-secret"),
    ("postgres://app:pa55word@db:5432/app", "pa55word", "url-credentials"),
    ("Server=db;User Id=sa;Password=Str0ng!;", "Str0ng!", "key-value-secret"),
    ("Authorization: Bearer abcdefghijklmnop.qrs", "abcdefghijklmnop", "bearer-token"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk",
     "private-key"),
    ("id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "AWS Access Key"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk", "eyJhbGciOiJIUzI1NiJ9", "JSON Web Token"),
    # Families found in real logs: the published rules, and ours where they have none.
    ("clone with ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 now", "ghp_a1B2c3D4e5F6", "GitHub Token"),
    ("glpat-" + "x1Y2z3A4b5C6d7E8f9G0 used", "glpat-x1Y2z3A4", "GitLab Token"),
    ("slack xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKl", "Slack Token"),
    ("stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWD", "Stripe Access Key"),
    ("OPENAI sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4", "a1B2c3D4e5F6g7H8", "api-key"),
    ("mysql -u root -pS3cretPass db", "S3cretPass", "command-line-password"),
    ("run --password hunter2xyz --verbose", "hunter2xyz", "command-line-password"),
    ("login --secret 'two words'", "two words", "command-line-password"),
])
def test_patterns(text, secret, kind):
    r = Redactor()
    out = r.redact(text, "f.txt")
    assert secret not in out and HIDDEN in out
    assert any(e["kind"] == kind and e["file"] == "f.txt" for e in r.summary()), r.summary()
    HOSTILE_COUNTS["secrets redacted"] += 1


def test_known_values_are_hidden_anywhere_and_marked_names_count():
    r = Redactor()
    r.add_env(["LICENSE=ABCD-1234-EFGH", "MODE=fast", "DB_PASS=zz-top-99"], secret_names=["LICENSE"])
    out = r.redact("starting with licence ABCD-1234-EFGH in fast mode; db zz-top-99", "log")
    assert "ABCD-1234-EFGH" not in out and "zz-top-99" not in out and "fast mode" in out
    assert r.summary() == [{"kind": "known-secret-value", "file": "log", "count": 2}]


@pytest.mark.parametrize("value", ['p\u00e4ss "w\\rd" 1', "a b&c=d/e?f", "it's $HOME"])
def test_a_known_value_is_hidden_in_every_encoding_a_collector_writes(value):
    import json
    import shlex
    import urllib.parse

    r = Redactor()
    r.add_literal(value)
    forms = [value, json.dumps(value), json.dumps(value, ensure_ascii=False), urllib.parse.quote(value, safe=""),
             urllib.parse.quote_plus(value), shlex.quote(value)]
    out = r.redact(" | ".join(forms), "inspect.json")
    assert all(form.strip('"') not in out for form in forms), out
    HOSTILE_COUNTS["secrets redacted"] += 1


def test_custom_patterns_and_ordinary_text():
    r = Redactor([r"ticket-\d+"])
    text = "image 127.0.0.1:5050/acme/web@sha256:abc ticket-4711 status healthy"
    out = r.redact(text, "x")
    assert out == text.replace("ticket-4711", HIDDEN)


@pytest.mark.parametrize("unit", ["abc_DEF.1-", "x://a", "password"])
def test_no_rule_sees_a_line_longer_than_the_bound(unit):
    """The shapes that made rules quadratic (80 s for 64 KiB), a MiB long: each line is cut to
    MAX_LINE before any pattern runs, so the work is linear; what is cut is not kept."""
    from installer.diagnostics.redact import MAX_LINE

    line = unit * ((1 << 20) // len(unit))
    out = Redactor().redact(f"start\n{line}\nend", "log")
    first, cut, last = out.split("\n")
    assert (first, last) == ("start", "end") and len(cut) < MAX_LINE + 64 and "characters cut]" in cut
