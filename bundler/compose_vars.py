"""Compose files as both sides read them: services merged as Compose merges files, and
`${VAR:-default}` in image names, resolved the same way when the vendor discovers images and
when the customer side rewrites them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import SpecError

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_DEFAULT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>.*))?$")


def interpolate_defaults(value: str, where: str) -> str:
    """Resolve `${VAR:-default}` with its default; a variable without one is an error,
    because the vendor's own environment must not decide what goes into a bundle."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        inner = m.group("braced") if m.group("braced") is not None else m.group("plain")
        parsed = _DEFAULT.match(inner or "")
        if not parsed or parsed.group("default") is None:
            raise SpecError(f"{where}: image {value!r} uses ${{{inner}}} without a default; "
                            "write ${NAME:-default} or list the image explicitly")
        return parsed.group("default")

    return _VAR.sub(sub, value)


def merged_services(docs: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The services of parsed compose files, a later file's definition of a service winning
    (as Compose merges -f files); anything that is not a mapping is left out."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        services = doc.get("services") if isinstance(doc, dict) else None
        if isinstance(services, dict):
            out.update({k: v for k, v in services.items() if isinstance(v, dict)})
    return out
