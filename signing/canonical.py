"""Canonical JSON: the exact bytes that are signed.

Sorted keys, no insignificant whitespace, ASCII only (non-ASCII escaped), no floats.
Parsing is strict: duplicate keys, floats, NaN and non-canonical bytes are rejected, so
two parsers can never disagree about what a signed document says.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import MalformedError


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise MalformedError(f"non-integer number {text!r}")


def _no_constant(text: str) -> Any:
    raise MalformedError(f"invalid JSON constant {text}")


def loads(data: bytes, *, what: str = "document") -> Any:
    """Parse canonical JSON bytes; raise MalformedError for anything else."""
    try:
        value = json.loads(data.decode("ascii"), object_pairs_hook=_no_duplicates,
                           parse_float=_no_float, parse_constant=_no_constant)
    except MalformedError as exc:
        raise MalformedError(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedError(f"{what} is not valid JSON: {exc}") from None
    if dumps(value) != data:
        raise MalformedError(f"{what} is not in canonical form")
    return value
