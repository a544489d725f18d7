"""Application settings the vendor declares, and their pure validation.

A setting has a name (an environment-variable name, used as ${NAME} in compose files), a
type, an optional default, whether it is required, whether it is secret, and a description.
Resolution across layers (vendor default < site < per-install override) is pure too, so
every rule is testable without a host."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from signing.grammar import ENV_NAME

from .errors import SpecError

# What Docker Compose and the Docker client take from their environment.
RESERVED = re.compile(r"(COMPOSE_|DOCKER_|BUILDKIT_).*|PATH|HOME|XDG_RUNTIME_DIR")
TYPES = ("string", "integer", "boolean", "port")
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
DEFAULT, SITE, OVERRIDE, SECRET_STORE = "vendor default", "site configuration", "--set override", "secret store"


@dataclass(frozen=True)
class Setting:
    name: str
    type: str = "string"
    default: str | None = None
    required: bool = False
    secret: bool = False
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required,
                               "secret": self.secret, "description": self.description}
        if self.default is not None:
            out["default"] = self.default
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Setting:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not ENV_NAME.fullmatch(obj["name"]):
            raise SpecError(f"{where}: a setting needs a name like DB_HOST")
        if RESERVED.fullmatch(obj["name"]):
            raise SpecError(f"{where}: setting name {obj['name']} is reserved: Docker Compose, which the "
                            "settings reach as environment variables, would read it itself")
        unknown = set(obj) - {"name", "type", "default", "required", "secret", "description"}
        if unknown:
            raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        kind = str(obj.get("type") or "string")
        if kind not in TYPES:
            raise SpecError(f"{where}: type {kind!r} (choose {', '.join(TYPES)})")
        default = obj.get("default")
        setting = cls(obj["name"], kind, None if default is None else _text(default), bool(obj.get("required")),
                      bool(obj.get("secret")), str(obj.get("description") or ""))
        if setting.secret and setting.default is not None:
            raise SpecError(f"{where}: secret setting {setting.name} cannot have a default")
        if setting.default is not None:
            check_value(setting, setting.default, DEFAULT)
        return setting


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_value(setting: Setting, value: str, layer: str) -> str:
    """The value in canonical form, or a SpecError naming the setting and the layer."""
    problem = None
    if setting.type == "integer" and not re.fullmatch(r"-?\d+", value):
        problem = "an integer"
    elif setting.type == "port" and not (value.isdigit() and 1 <= int(value) <= 65535):
        problem = "a port number (1-65535)"
    elif setting.type == "boolean":
        if value.lower() not in _TRUE | _FALSE:
            problem = "true or false"
        else:
            return "true" if value.lower() in _TRUE else "false"
    if problem:
        shown = "(secret)" if setting.secret else repr(value)
        raise SpecError(f"setting {setting.name} from the {layer} is {shown}, but must be {problem}; "
                        f"fix it with satchel config set {setting.name}=VALUE")
    return value


@dataclass(frozen=True)
class Resolved:
    values: dict[str, str]          # name -> effective value (secrets included)
    layers: dict[str, str]          # name -> the layer it came from

    def public(self, settings: list[Setting]) -> dict[str, str]:
        """Values safe to write down: secrets replaced by set/unset."""
        secret = {s.name for s in settings if s.secret}
        return {k: ("(set)" if k in secret else v) for k, v in sorted(self.values.items())}


def resolve(settings: list[Setting], site: dict[str, str], overrides: dict[str, str],
            secrets: dict[str, str]) -> Resolved:
    declared = {s.name: s for s in settings}
    for layer, values in ((SITE, site), (OVERRIDE, overrides)):
        for name in values:
            if name not in declared:
                fix = f"satchel config unset {name}" if layer == SITE else f"drop --set {name}"
                raise SpecError(f"setting {name} from the {layer} is not declared by this bundle "
                                f"({', '.join(sorted(declared)) or 'it declares none'}); {fix}")
            if declared[name].secret:
                raise SpecError(f"setting {name} is secret: give it with satchel config set-secret {name} "
                                "(standard input), never on a command line or in a file")
    values, layers = {}, {}
    for s in settings:
        for layer, source in ((OVERRIDE, overrides), (SITE, site), (SECRET_STORE, secrets), (DEFAULT, {})):
            value = s.default if layer == DEFAULT else source.get(s.name)
            if value is not None:
                values[s.name], layers[s.name] = check_value(s, value, layer), layer
                break
        else:
            if s.required:
                how = f"config set-secret {s.name}" if s.secret else f"config set {s.name}=VALUE"
                raise SpecError(f"required setting {s.name} has no value in any layer"
                                + (f" ({s.description})" if s.description else "") + f"; run satchel {how}")
    return Resolved(values, layers)
