"""Redaction rules, pure: each kind of secret is hidden and counted, ordinary text is kept."""

from __future__ import annotations

import pytest

from installer.diagnostics.redact import HIDDEN, Redactor


@pytest.mark.parametrize("text,secret,kind", [
    ("DB_PASSWORD=hunter2-xyz", "hunter2-xyz", "key-value-secret"),
    ("api_key: 'abc123def456'", "abc123def456", "key-value-secret"),
    ('{"client_secret": "s3cr3t value"}', "s3cr3t value", "json-secret"),
    ("postgres://app:pa55word@db:5432/app", "pa55word", "url-credentials"),
    ("Server=db;User Id=sa;Password=Str0ng!;", "Str0ng!", "key-value-secret"),
    ("Authorization: Bearer abcdefghijklmnop.qrs", "abcdefghijklmnop", "bearer-token"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk",
     "private-key"),
    ("id AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk", "eyJhbGciOiJIUzI1NiJ9", "jwt"),
])
def test_patterns(text, secret, kind):
    r = Redactor()
    out = r.redact(text, "f.txt")
    assert secret not in out and HIDDEN in out
    assert any(e["kind"] == kind and e["file"] == "f.txt" for e in r.summary()), r.summary()


def test_known_values_are_hidden_anywhere_and_marked_names_count():
    r = Redactor()
    r.add_env(["LICENSE=ABCD-1234-EFGH", "MODE=fast", "DB_PASS=zz-top-99"], secret_names=["LICENSE"])
    out = r.redact("starting with licence ABCD-1234-EFGH in fast mode; db zz-top-99", "log")
    assert "ABCD-1234-EFGH" not in out and "zz-top-99" not in out and "fast mode" in out
    assert r.summary() == [{"kind": "known-secret-value", "file": "log", "count": 2}]


def test_custom_patterns_and_ordinary_text():
    r = Redactor([r"ticket-\d+"])
    text = "image 127.0.0.1:5050/acme/web@sha256:abc ticket-4711 status healthy"
    out = r.redact(text, "x")
    assert out == text.replace("ticket-4711", HIDDEN)
