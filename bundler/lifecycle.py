"""What the vendor declares about the application's life on a host, signed with the manifest:
which named volumes hold its data and how to make them consistent before a snapshot, the
one-off jobs (hooks) that run around a switch, and the health policy with its watch window.

The same parser reads satchel.yaml (after the spec model checked its structure) and the
manifest (untrusted until the signature check, parsed strictly), so both say the same."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signing.grammar import parse_duration

from .errors import SpecError

QUIESCE = ("stop", "command", "none")
HOOKS = ("before-switch", "after-switch", "before-rollback")
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
MAX_SECONDS = 7 * 24 * 3600


def seconds(value: Any, where: str) -> int:
    """30, "30s", "5m", "2h": whole seconds, at most a week."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a duration like 30s or 5m")
    if isinstance(value, int):
        out = value
    else:
        parsed = parse_duration(str(value))
        if parsed is None:
            raise SpecError(f"{where}: {value!r} is not a duration like 30s, 5m or 2h")
        out = int(parsed.total_seconds())
    if not 0 <= out <= MAX_SECONDS:
        raise SpecError(f"{where}: {value!r} is out of range (0 to 7d)")
    return out


def _fields(obj: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a mapping")
    unknown = set(obj) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return obj


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise SpecError(f"{where}: expected a volume or service name")
    return value


def _command(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: expected a command as a list of strings, like [sh, -c, \"...\"]")
    return tuple(value)


@dataclass(frozen=True)
class DataVolume:
    """A named volume of the compose files that holds state, and how to make it consistent
    before it is copied: stop the services that mount it, run a command in a service (a
    database dump, say), or nothing."""

    volume: str
    quiesce: str = "stop"
    service: str = ""
    command: tuple[str, ...] = ()
    secret: bool = False            # its snapshots are readable by root only (they always are kept so)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"volume": self.volume, "quiesce": self.quiesce, "secret": self.secret}
        if self.quiesce == "command":
            out |= {"service": self.service, "command": list(self.command)}
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> DataVolume:
        f = _fields(obj, where, {"volume", "quiesce", "service", "command", "secret"})
        quiesce = f.get("quiesce", "stop")
        if quiesce not in QUIESCE:
            raise SpecError(f"{where}.quiesce: {quiesce!r} (choose {', '.join(QUIESCE)})")
        if (quiesce == "command") != ("command" in f or "service" in f):
            raise SpecError(f"{where}: service and command go with quiesce: command, and only with it")
        if quiesce == "command":
            return cls(_name(f.get("volume"), f"{where}.volume"), quiesce, _name(f.get("service"), f"{where}.service"),
                       _command(f.get("command"), f"{where}.command"), bool(f.get("secret", False)))
        return cls(_name(f.get("volume"), f"{where}.volume"), quiesce, secret=bool(f.get("secret", False)))


@dataclass(frozen=True)
class Hook:
    """A one-off job from the release's own image: `command` run as `service` (its image,
    environment and volumes), given `timeout` seconds."""

    service: str
    command: tuple[str, ...]
    timeout: int = 300

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "command": list(self.command), "timeout": self.timeout}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Hook:
        f = _fields(obj, where, {"service", "command", "timeout"})
        return cls(_name(f.get("service"), f"{where}.service"), _command(f.get("command"), f"{where}.command"),
                   seconds(f.get("timeout", 300), f"{where}.timeout") or 1)


@dataclass(frozen=True)
class HealthPolicy:
    """After the switch: checks every `period` seconds, the first after `initial_delay`; one
    check may take `timeout`; `failure_threshold` failing checks in a row roll back, for as
    long as the `watch` window lasts (0: no watch, the switch is judged once healthy)."""

    initial_delay: int = 30
    period: int = 15
    timeout: int = 5
    failure_threshold: int = 3
    watch: int = 0

    KEYS: ClassVar[dict[str, str]] = {"initial-delay": "initial_delay", "period": "period", "timeout": "timeout",
                                      "watch": "watch"}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: getattr(self, attr) for key, attr in self.KEYS.items()}
        return out | {"failure-threshold": self.failure_threshold}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> HealthPolicy:
        f = _fields(obj, where, {*cls.KEYS, "failure-threshold"})
        durations = {attr: seconds(f[key], f"{where}.{key}") for key, attr in cls.KEYS.items() if key in f}
        threshold = f.get("failure-threshold", 3)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 100:
            raise SpecError(f"{where}.failure-threshold: expected a count from 1 to 100")
        policy = cls(**durations, failure_threshold=threshold)
        if policy.period < 1:
            raise SpecError(f"{where}.period: at least 1s")
        return policy


def check_names(lifecycle: Lifecycle, services: set[str], volumes: set[str]) -> None:
    """Every service and volume the lifecycle names is one the compose files declare."""
    for v in lifecycle.data:
        if v.volume not in volumes:
            raise SpecError(f"data: volume {v.volume} is not a named volume of the compose files "
                            f"(they declare: {', '.join(sorted(volumes)) or 'none'})")
    named = [(f"data: {v.volume}", v.service) for v in lifecycle.data if v.service]
    named += [(f"hooks.{phase}", h.service) for phase, h in lifecycle.hooks.items()]
    for where, service in named:
        if service not in services:
            raise SpecError(f"{where}: service {service} is not in the compose files "
                            f"(they have: {', '.join(sorted(services))})")


@dataclass(frozen=True)
class Lifecycle:
    data: tuple[DataVolume, ...] = ()
    hooks: dict[str, Hook] = field(default_factory=dict, hash=False)
    health: HealthPolicy | None = None

    def __bool__(self) -> bool:
        return bool(self.data or self.hooks or self.health)

    def to_json(self) -> dict[str, Any]:
        """Only what is declared: a bundle that declares nothing has the manifest it always had."""
        out: dict[str, Any] = {}
        if self.data:
            out["data"] = [v.to_json() for v in self.data]
        if self.hooks:
            out["hooks"] = {phase: self.hooks[phase].to_json() for phase in HOOKS if phase in self.hooks}
        if self.health:
            out["health"] = self.health.to_json()
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Lifecycle:
        """From the `data`, `hooks` and `health` keys of a spec or manifest (absent ones: none)."""
        data = doc.get("data") or []
        if not isinstance(data, list):
            raise SpecError("data: expected a list of volumes")
        volumes = tuple(DataVolume.from_json(v, f"data[{i}]") for i, v in enumerate(data))
        if len({v.volume for v in volumes}) != len(volumes):
            raise SpecError("data: a volume is listed twice")
        hooks = _fields(doc.get("hooks") or {}, "hooks", set(HOOKS))
        health = doc.get("health")
        return cls(volumes, {phase: Hook.from_json(h, f"hooks.{phase}") for phase, h in hooks.items()},
                   HealthPolicy.from_json(health, "health") if health is not None else None)
