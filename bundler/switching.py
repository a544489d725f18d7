"""How a release replaces the one before it (`switch:` in satchel.yaml, signed with the manifest).

`recreate` (the default): Compose replaces the containers in place. `blue-green`: the new release
starts next to the old one as a Compose project of its own colour; nothing routes to it until it
is healthy; then the managed front proxy moves the routed ports to it in one step, the old
colour's connections drain, and the old colour stops. Services that must not run twice are
declared: `keep` runs once, outside the colours, across the switch (a database holding a
volume); `stop-first` is stopped in the old colour just before the cut-over and started in the
new one (a singleton worker).

Pure: the port rules are checked against the compose documents at build and applied at install."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .lifecycle import NAME, seconds

STRATEGIES = ("recreate", "blue-green")
MODES = ("http", "tcp")
SINGLETONS = ("keep", "stop-first")
_PORT = re.compile(r"(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+(?:\.\d+){3}):)?(?:(?P<published>\d+):)?(?P<target>\d+)"
                   r"(?:/(?P<proto>\w+))?")


@dataclass(frozen=True)
class Port:
    """A port a routed service publishes: the host listens on host_ip:published (through the
    proxy), the service's containers answer on target."""

    service: str
    mode: str
    host_ip: str
    published: int
    target: int

    def to_json(self) -> list[Any]:
        return [self.service, self.mode, self.host_ip, self.published, self.target]

    @classmethod
    def from_json(cls, doc: Any) -> Port:
        if not (isinstance(doc, list) and len(doc) == 5 and all(isinstance(v, str) for v in doc[:3])
                and all(isinstance(v, int) for v in doc[3:])):
            raise ValueError("a route is [service, mode, host_ip, published, target]")
        return cls(*doc)


@dataclass(frozen=True)
class Switch:
    strategy: str = "recreate"
    drain: int = 10                                           # seconds the old colour's connections get
    routes: dict[str, str] = field(default_factory=dict, hash=False)       # service -> http | tcp
    singletons: dict[str, str] = field(default_factory=dict, hash=False)   # service -> keep | stop-first

    @property
    def blue_green(self) -> bool:
        return self.strategy == "blue-green"

    def role(self, service: str) -> str:
        """route, keep, stop-first or both (runs in each colour, unrouted)."""
        return "route" if service in self.routes else self.singletons.get(service, "both")

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "drain": self.drain, "routes": dict(sorted(self.routes.items())),
                "singletons": dict(sorted(self.singletons.items()))}

    @classmethod
    def from_json(cls, obj: Any, where: str = "switch") -> Switch:
        if isinstance(obj, str):
            obj = {"strategy": obj}
        if not isinstance(obj, dict):
            raise SpecError(f"{where}: expected {' or '.join(STRATEGIES)}, or a mapping with strategy:")
        unknown = set(obj) - {"strategy", "drain", "routes", "singletons"}
        if unknown:
            raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        strategy = obj.get("strategy", "recreate")
        if strategy not in STRATEGIES:
            raise SpecError(f"{where}.strategy: {strategy!r} (choose {' or '.join(STRATEGIES)})")
        routes = _roles(obj.get("routes"), f"{where}.routes", MODES)
        singletons = _roles(obj.get("singletons"), f"{where}.singletons", SINGLETONS)
        if strategy == "recreate" and (routes or singletons):
            raise SpecError(f"{where}: routes and singletons go with strategy: blue-green")
        if both := sorted(set(routes) & set(singletons)):
            raise SpecError(f"{where}: {', '.join(both)} is routed and a singleton; a routed service runs in "
                            "both colours")
        return cls(strategy, seconds(obj.get("drain", 10), f"{where}.drain"), routes, singletons)


def _roles(obj: Any, where: str, allowed: tuple[str, ...]) -> dict[str, str]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a mapping of service: {' | '.join(allowed)}")
    out = {}
    for service, value in obj.items():
        if not isinstance(service, str) or not NAME.fullmatch(service):
            raise SpecError(f"{where}: {service!r} is not a service name")
        if value not in allowed:
            raise SpecError(f"{where}.{service}: {value!r} (choose {' or '.join(allowed)})")
        out[service] = str(value)
    return out


def published_ports(service: str, spec: dict[str, Any]) -> list[tuple[str, int | None, int, str]]:
    """(host_ip, published or None, target, protocol) of each entry of a compose service's
    `ports:`, short or long syntax. Ranges are refused: a switch moves single ports."""
    out = []
    for entry in spec.get("ports") or []:
        if isinstance(entry, dict):
            try:
                published = int(entry["published"]) if entry.get("published") not in (None, "") else None
                out.append((str(entry.get("host_ip", "")), published, int(entry["target"]),
                            str(entry.get("protocol", "tcp"))))
            except (KeyError, TypeError, ValueError):
                raise SpecError(f"service {service}: cannot read the port {entry!r}") from None
            continue
        m = _PORT.fullmatch(str(entry))
        if not m:
            raise SpecError(f"service {service}: the port {entry!r} is not HOST_IP:PUBLISHED:TARGET (ranges and "
                            "variables cannot be routed)")
        out.append(((m["ip"] or "").strip("[]"), int(m["published"]) if m["published"] else None,
                    int(m["target"]), m["proto"] or "tcp"))
    return out


def routed_ports(switch: Switch, services: dict[str, Any]) -> list[Port]:
    """The ports the proxy publishes, checked: every service that publishes a port and would run
    in both colours is routed; a routed port is TCP and has a fixed host port."""
    for name in sorted({*switch.routes, *switch.singletons} - set(services)):
        raise SpecError(f"switch: service {name} is not in the compose files (they have: "
                        f"{', '.join(sorted(services))})")
    out = []
    for name, spec in sorted(services.items()):
        ports = published_ports(name, spec if isinstance(spec, dict) else {})
        role = switch.role(name)
        if role == "both" and ports:
            raise SpecError(f"switch: service {name} publishes ports, and both colours cannot hold them; "
                            "route it (switch.routes), or make it a singleton")
        if role != "route":
            continue
        if not ports:
            raise SpecError(f"switch.routes: service {name} publishes no port to route")
        for host_ip, published, target, proto in ports:
            if proto != "tcp" or published is None:
                raise SpecError(f"switch.routes: service {name}: only TCP ports with a fixed host port can be "
                                f"routed (found {published or 'a random port'}:{target}/{proto})")
            out.append(Port(name, switch.routes[name], host_ip, published, target))
    seen = [p.published for p in out]      # the proxy binds each in its own container
    if len(set(seen)) != len(seen):
        raise SpecError("switch.routes: two routed services publish the same host port")
    return out
