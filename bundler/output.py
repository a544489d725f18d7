"""What every command prints the same way, vendor and customer side: JSON and sizes.

Command output uses snake_case keys. The bundle format (manifest.json) keeps the camelCase of
the OCI specifications it sits next to; output keys that were camelCase before 0.2 are still
printed beside their snake_case form for one release (docs/OPERATIONS.md, "JSON output")."""

from __future__ import annotations

import json
import re
from typing import Any

import click


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(data: Any) -> Any:
    """Every camelCase key also under its snake_case name (the camelCase one is deprecated)."""
    if isinstance(data, list):
        return [snake_case(v) for v in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        value = snake_case(value)
        out[key] = value
        if isinstance(key, str) and _CAMEL.search(key):
            out[_CAMEL.sub(lambda m: "_" + m.group(1).lower(), key)] = value
    return out


def emit_json(data: Any) -> None:
    click.echo(json.dumps(snake_case(data), indent=2, sort_keys=True))
