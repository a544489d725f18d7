"""What a compose file grants its containers over the host: privileged mode, the host's
namespaces, added capabilities, host paths mounted, devices, confinement switched off. A
validly signed bundle can ask for any of these; `satchel build` records them in the manifest so
that `inspect` shows them, and the customer's site policy (installer/policy.py) judges them,
from the verified compose files themselves. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("privileged", "host-namespace", "capability", "host-path", "device", "unconfined")
NAMESPACES = ("pid", "ipc", "network_mode", "uts", "userns_mode", "cgroup")


@dataclass(frozen=True, order=True)
class Grant:
    service: str
    kind: str
    detail: str          # the namespace, the capability, the host path, the device, the option

    def to_json(self) -> list[str]:
        return [self.service, self.kind, self.detail]

    @classmethod
    def from_json(cls, doc: Any) -> Grant:
        if not (isinstance(doc, list) and len(doc) == 3 and all(isinstance(v, str) for v in doc)
                and doc[1] in KINDS):
            raise ValueError("a grant is [service, kind, detail]")
        return cls(*doc)

    def line(self) -> str:
        return f"{self.service}: {self.kind}" + (f" {self.detail}" if self.detail else "")


def _host_path(mount: Any) -> str | None:
    """The host path a volume entry binds, if it is a bind mount (short or long syntax)."""
    if isinstance(mount, dict):
        return str(mount.get("source", "")) if mount.get("type") == "bind" else None
    source = str(mount).split(":", 1)[0] if ":" in str(mount) else ""
    return source if source.startswith(("/", ".", "~")) else None


def grants_of(services: dict[str, Any]) -> tuple[Grant, ...]:
    out = set()
    for name, spec in services.items():
        if not isinstance(spec, dict):
            continue
        if spec.get("privileged") is True:
            out.add(Grant(name, "privileged", ""))
        for key in NAMESPACES:
            if str(spec.get(key, "")) == "host":
                out.add(Grant(name, "host-namespace", key.removesuffix("_mode")))
        for cap in spec.get("cap_add") or []:
            out.add(Grant(name, "capability", str(cap).upper().removeprefix("CAP_")))
        for mount in spec.get("volumes") or []:
            if (path := _host_path(mount)) is not None:
                out.add(Grant(name, "host-path", path))
        for device in spec.get("devices") or []:
            out.add(Grant(name, "device", str(device.get("source", "")) if isinstance(device, dict)
                          else str(device).split(":", 1)[0]))
        for option in spec.get("security_opt") or []:
            if str(option).replace("=", ":").endswith(":unconfined"):
                out.add(Grant(name, "unconfined", str(option)))
    return tuple(sorted(out))
