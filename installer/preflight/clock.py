"""The host's clock is not behind the bundle's build (an expiry judged on a wrong clock misleads)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from signing.grammar import format_time, now_utc, parse_time

from .model import Context, Result

SLACK = timedelta(minutes=10)


def check(ctx: Context) -> Iterator[Result]:
    now, built = now_utc(), parse_time(ctx.manifest.created)
    yield Result("clock", now + SLACK >= built, f"not before the build ({ctx.manifest.created})", format_time(now),
                 "set the host's clock", level="warn")
