"""Redaction: pure text in, text out, and a report of what was hidden (never the values).

Three layers, applied to every file before it enters an archive:
1. literal values known to be secret (from environments whose variable names look secret
   or that the vendor marked secret), wherever they appear, e.g. echoed in a log line, and
   in every encoding a collector can produce: JSON string escapes, URL encoding, shell quoting;
2. patterns: the token rules of Yelp's detect-secrets (GitHub, GitLab, Slack, Stripe, OpenAI,
   AWS, npm, PyPI, JWT, private keys, …: a maintained, published rule set), and ours for
   what it has no rule for: private-key blocks, credentials in URLs, bearer tokens, key=value
   pairs whose key looks secret (env, YAML, JSON, connection strings), passwords on command
   lines (--password x, -pPASS) and sk- API keys;
3. the vendor's and the operator's own regular expressions (--redact).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from typing import Any

HIDDEN = "***HIDDEN***"
MAX_LINE = 8192
SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
    r"auth|licen[cs]e[_-]?key|session[_-]?key|signing[_-]?key|client[_-]?secret)")
# Bounded on both sides: an unbounded run of name characters before the keyword makes the
# search quadratic in the line's length (a 64 KiB line took 80 s).
_KEY = r"[A-Za-z0-9_.-]{0,64}" + SECRET_NAME.pattern[4:] + r"[A-Za-z0-9_.-]{0,64}"
PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    ("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
                               re.S), HIDDEN),
    ("url-credentials", re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + HIDDEN + "@"),
    ("bearer-token", re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + HIDDEN),
    ("json-secret", re.compile(r'(?i)("' + _KEY + r'"\s*:\s*)"(?:[^"\\]|\\.)*"'), r'\1"' + HIDDEN + '"'),
    ("key-value-secret",
     re.compile(r"(?i)(\b" + _KEY + r"\s*[=:]\s*)(?!\*\*\*HIDDEN)(\"[^\"]*\"|'[^']*'|[^\s;,&\"']+)"), r"\1" + HIDDEN),
    ("command-line-password", re.compile(r"(?i)(--?(?:password|passwd|pass|pwd|token|secret)(?:=|\s+))"
                                         r"(?!\*\*\*HIDDEN)(\"[^\"]*\"|'[^']*'|\S+)"), r"\1" + HIDDEN),
    ("command-line-password", re.compile(r"(?<=\s)(-p)(?!\*\*\*HIDDEN)([^\s-]\S{2,})"), r"\1" + HIDDEN),
    ("api-key", re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{19,}"), HIDDEN),
]
# detect-secrets rules that find what is not a secret here (addresses) or too much (entropy).
NOT_SECRETS = {"IPPublicDetector", "Base64HighEntropyString", "HexHighEntropyString", "KeywordDetector"}


@functools.cache
def published_rules() -> list[tuple[str, re.Pattern[str], str]]:
    """(kind, regex, replacement) for each regex rule of detect-secrets; a whole match is
    hidden. Fails loudly if the rules are missing (a packaging mistake must not quietly
    weaken redaction)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
    rules = [(kind, regex, HIDDEN) for kind, cls in sorted(mapping.items())
             if issubclass(cls, RegexBasedDetector) and cls.__name__ not in NOT_SECRETS for regex in cls.denylist]
    if not {"GitHub Token", "Slack Token", "AWS Access Key"} <= {kind for kind, _, _ in rules}:
        raise RuntimeError("the detect-secrets rules could not be loaded; redaction refuses to run without them")
    return rules


def encodings(value: str) -> set[str]:
    """The forms a value takes in what collectors write: as is, JSON-escaped (ASCII or not),
    URL-encoded, shell-quoted."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value), shlex.quote(value)}
    return {f for f in forms if len(f) >= 4}


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


class Redactor:
    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.literals: set[str] = set()
        self.extra = [re.compile(p) for p in extra]
        self.report: Counter[tuple[str, str]] = Counter()   # (kind, file) -> count

    def add_literal(self, value: str) -> None:
        """A value known to be secret, in every encoding; short values would redact noise, so need 4+ chars."""
        if len(value) >= 4:
            self.literals |= encodings(value)

    def add_env(self, env: Iterable[str], secret_names: Iterable[str] = ()) -> None:
        """Learn secret values from NAME=VALUE entries (names that look secret or are marked)."""
        marked = set(secret_names)
        for entry in env:
            name, sep, value = entry.partition("=")
            if sep and (name in marked or is_secret_name(name)):
                self.add_literal(value)

    def redact(self, text: str, where: str) -> str:
        """Known values first, then lines are cut to MAX_LINE characters (what is cut is not
        kept), then the patterns: linear in the text's length."""
        for literal in sorted(self.literals, key=len, reverse=True):
            count = text.count(literal)
            if count:
                text = text.replace(literal, HIDDEN)
                self.report[("known-secret-value", where)] += count
        text = _cut_long_lines(text)
        # Ours first: a private-key block must go whole, before a rule takes just its header.
        for kind, pattern, replacement in PATTERNS + published_rules():
            text, count = pattern.subn(replacement, text)
            if count:
                self.report[(kind, where)] += count
        for pattern in self.extra:
            text, count = pattern.subn(HIDDEN, text)
            if count:
                self.report[("custom-pattern", where)] += count
        return text

    def summary(self) -> list[dict[str, object]]:
        return [{"kind": k, "file": f, "count": n} for (k, f), n in sorted(self.report.items())]


def _cut_long_lines(text: str) -> str:
    """Some published rules are quadratic in a line's length (an unbounded run before a
    separator): no line reaches them longer than MAX_LINE."""
    if len(text) <= MAX_LINE or max(map(len, text.split("\n"))) <= MAX_LINE:
        return text
    return "\n".join(line if len(line) <= MAX_LINE else
                     f"{line[:MAX_LINE]} [... {len(line) - MAX_LINE} characters cut]" for line in text.split("\n"))


def mask_env(entry: str, marked: set[str]) -> str:
    """NAME=VALUE with the value hidden when the vendor marked NAME secret or it looks secret."""
    name, sep, _ = entry.partition("=")
    return f"{name}={HIDDEN}" if sep and (name in marked or is_secret_name(name)) else entry
