"""The grammar every parser shares: names, versions, key ids, digests, times, durations.

It lives in `signing`, the bottom layer, because trust decisions parse versions and key ids
and `signing` imports nothing above it; the spec, the manifest, the CLI and the customer side
all read these same definitions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

APP_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?")
# Semantic versioning 2.0.0: groups 1-3 major.minor.patch, 4 pre-release, 5 build.
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
KEY_ID = SHA256_HEX            # sha256 of the public key's DER SubjectPublicKeyInfo
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def version_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Semantic-version precedence: a pre-release sorts before its release."""
    m = SEMVER.fullmatch(version)
    if not m:
        raise ValueError(f"{version!r} is not a semantic version")
    pre = m.group(4)
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, ids


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def utc_stamp() -> str:
    """The current time as the manifest, history and diagnostics write it."""
    return format_time(now_utc())


def parse_duration(text: str) -> timedelta | None:
    """30s, 15m, 12h, 365d; None if `text` is not such a duration."""
    m = _DURATION.fullmatch(text)
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m else None
