"""Blue-green for the Compose target (bundler/switching.py says what the vendor declares).

A release runs as the Compose project PROJECT-blue or PROJECT-green; `keep` singletons run once
as PROJECT (the name a recreate release runs under, so the data of a database carries over), and
are attached to each colour's networks under their service name. Routed services publish no
port themselves: the front proxy (installer/tools/proxy.py) publishes them and forwards to the
live colour's containers by name.

What a restarted proxy serves is the truth about which colour is live: its configuration on
disk, replaced by a rename. `colours.json` beside it says which release each colour was started
for; it is written before a colour starts, so that a re-run after a crash finds what it left.

    start:    colour = the one that runs this release already, else the one not live;
              keep singletons up; the colour up (stop-first services not yet); wait for health
    cut over: stop-first services move; the proxy switches to the colour (a seamless reload);
              the old colour's connections drain; the old colour is removed
    discard:  a colour that never went live is removed (the live one was never touched)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.errors import EnvironmentProblem
from bundler.oci.layout import write_atomic
from bundler.switching import Switch
from bundler.tools import docker

from .. import faults, health
from ..tools import compose
from ..tools.proxy import FrontProxy, Listener

if TYPE_CHECKING:
    from ..health import Observer
    from ..releases import Release

COLOURS = ("blue", "green")


def split(doc: dict[str, Any], switch: Switch, project: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One compose document as (what each colour runs, what runs once: the keep singletons).
    Routed services lose their published ports (the proxy holds them); named volumes get the
    name a recreate release gives them, so both colours and the singletons share one volume."""
    services = {k: v for k, v in (doc.get("services") or {}).items() if isinstance(v, dict)}
    keep = {k for k in services if switch.role(k) == "keep"}
    volumes = {key: {**(spec or {}), "name": (spec or {}).get("name") or f"{project}_{key}"}
               for key, spec in (doc.get("volumes") or {}).items()}
    colour_services = {}
    for name, spec in services.items():
        if name in keep:
            continue
        spec = dict(spec)
        if switch.role(name) == "route":
            spec.pop("ports", None)
        depends = spec.get("depends_on")
        if isinstance(depends, list):
            spec["depends_on"] = [d for d in depends if d not in keep] or None
        elif isinstance(depends, dict):
            spec["depends_on"] = {k: v for k, v in depends.items() if k not in keep} or None
        colour_services[name] = {k: v for k, v in spec.items() if v is not None}
    rest = {k: v for k, v in doc.items() if k not in ("services", "volumes")}
    coloured = {**rest, "services": colour_services, **({"volumes": volumes} if volumes else {})}
    if not keep:
        return coloured, None
    return coloured, {**rest, "services": {k: services[k] for k in sorted(keep)},
                      **({"volumes": volumes} if volumes else {})}


@dataclass(frozen=True)
class Place:
    """Where some of a release's services run: a Compose project and its files."""

    project: str
    files: list[Path]


class Colours:
    """The blue-green state of one application, seen from one of its releases."""

    def __init__(self, release: Release, switch: Switch) -> None:
        self.release = release
        self.switch = switch
        self.dir = release.path.parent.parent / "proxy"     # apps/NAME/proxy
        self.proxy = FrontProxy(self.dir, release.project)
        self.state_file = self.dir / "colours.json"

    # -- state ---------------------------------------------------------------------

    def started(self) -> dict[str, str | None]:
        try:
            doc = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            doc = {}
        return {c: doc.get(c) if isinstance(doc.get(c), str) else None for c in COLOURS}

    def _record(self, colour: str, release_id: str | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_file, json.dumps({**self.started(), colour: release_id}).encode())

    def live(self) -> str | None:
        return self.proxy.routes()

    def colour(self) -> str:
        """The colour this release runs in, or is to be started in."""
        started, live = self.started(), self.live()
        mine = [c for c in COLOURS if started[c] == self.release.path.name]
        if live in mine:
            return live
        if mine:
            return mine[0]
        return next(c for c in COLOURS if c != live)

    def traffic(self) -> dict[str, Any]:
        state = self.proxy.state()
        return {"strategy": "blue-green", "live": self.live(), "colours": self.started(),
                "proxy": {"container": self.proxy.container,
                          "state": "running" if state and state.get("Running") else
                          str(state.get("Status")) if state else "absent"},
                "ports": [f"{p.host_ip or '*'}:{p.published} -> {p.service}:{p.target} ({p.mode})"
                          for p in self.release.info.routes]}

    def project(self, colour: str) -> str:
        return f"{self.release.project}-{colour}"

    def places(self) -> list[Place]:
        """Where this release runs now: its colour (if it was started) and the keep singletons."""
        out = []
        colour = next((c for c in COLOURS if self.started()[c] == self.release.path.name), None)
        if colour:
            out.append(Place(self.project(colour), self._files("compose")))
        if self.release.info.keep:
            out.append(Place(self.release.project, self._files("keep")))
        return out

    def _files(self, kind: str) -> list[Path]:
        names = self.release.info.compose if kind == "compose" else self.release.info.keep
        return [self.release.path / rel for rel in names]

    # -- start, cut over, discard ------------------------------------------------------

    def start(self, wait_timeout: int, observe: Observer, env: dict[str, str]) -> tuple[bool, str]:
        """Start the release in its colour next to the live one, and wait until it is healthy.
        The live colour is not touched."""
        colour = self.colour()
        project, files, cwd = self.project(colour), self._files("compose"), self.release.path
        if self.started()[colour] != self.release.path.name:
            # Left by a run that was killed, or by a release that failed: not this one.
            compose.down(project, files, cwd, env)
            self._record(colour, self.release.path.name)
            faults.point("colour-recorded")
        if self.release.info.keep:
            ok, detail = compose.up(self.release.project, self._files("keep"), cwd, wait_timeout, env)
            if not ok:
                return False, detail
        ok, detail = compose.up(project, files, cwd, wait_timeout, env, no_start=True)
        if ok:
            self._join_singletons(colour)
            ok, detail = compose.up(project, files, cwd, wait_timeout, env, services=self._later())
        if not ok:
            return False, detail
        later = set(self._stop_first())
        return health.wait(lambda: [c for c in self.containers(colour)
                                    if c["Config"]["Labels"].get("com.docker.compose.service") not in later],
                           wait_timeout, observe)

    def cut_over(self, wait_timeout: int, observe: Observer, env: dict[str, str]) -> tuple[bool, str]:
        """Move the stop-first singletons, then the traffic, to this release's colour; drain and
        remove the other colour. (False, why) when a stop-first singleton did not get healthy in
        the new colour: it runs again in the old one, and the traffic never moved."""
        colour, cwd = self.colour(), self.release.path
        old = next(c for c in COLOURS if c != colour)
        self._retire_plain(env)
        singles = self._stop_first()
        if singles and self.started()[old] is not None:
            compose.job(self.project(old), self._files("compose"), cwd, ["stop", "-t", "10", *singles], 120, env)
        if singles:
            ok, detail = compose.up(self.project(colour), self._files("compose"), cwd, wait_timeout, env,
                                    services=singles)
            if ok:
                ok, detail = health.wait(lambda: self.containers(colour), wait_timeout, observe)
            if not ok:
                compose.job(self.project(colour), self._files("compose"), cwd, ["stop", "-t", "10", *singles], 120,
                            env)
                if self.started()[old] is not None:
                    compose.job(self.project(old), self._files("compose"), cwd, ["start", *singles], 120, env)
                return False, detail
        self.route(colour)
        faults.point("after-cut-over")
        self.proxy.drain(self.switch.drain)
        self._remove(old, env)
        return True, ""

    def route(self, colour: str) -> None:
        """The proxy publishes the routed ports and forwards them to the colour (a seamless reload)."""
        listeners = self._listeners(colour)
        text = self.proxy.render(colour, listeners, self.switch.drain)
        if not self.proxy.config.exists():
            self.proxy.write_initial(text)
        self.proxy.ensure(listeners)
        for network in docker.project_networks(self.project(colour)):
            self.proxy.attach(network)
        self.proxy.switch(text)

    def discard(self, env: dict[str, str]) -> None:
        """Remove this release's colour, unless it is the live one."""
        colour = self.colour()
        if colour != self.live() and self.started()[colour] == self.release.path.name:
            self._remove(colour, env)

    def retire(self, env: dict[str, str]) -> None:
        """Back to one project without a proxy (a recreate release replaces a blue-green one)."""
        for colour in COLOURS:
            self._remove(colour, env)
        self.proxy.remove()
        for path in (self.proxy.config, self.state_file):
            path.unlink(missing_ok=True)

    def _retire_plain(self, env: dict[str, str]) -> None:
        """Containers of a recreate release that ran before (PROJECT, other than the keep
        singletons) hold the ports the proxy is to publish: the first blue-green switch stops them."""
        keep = {s for s, role in self.switch.singletons.items() if role == "keep"}
        plain = [c for c in docker.project_containers(self.release.project, None, 0)
                 if c["inspect"]["Config"]["Labels"].get("com.docker.compose.service") not in keep]
        if plain and self.release.info.keep:    # up of the singletons alone removes the others
            compose.up(self.release.project, self._files("keep"), self.release.path, 120, env)
        elif plain:
            compose.down(self.release.project, self._files("compose"), self.release.path, env)

    def _remove(self, colour: str, env: dict[str, str]) -> None:
        project = self.project(colour)
        for network in docker.project_networks(project):
            for container in [*self._singleton_containers(), self.proxy.container]:
                docker.disconnect_network(network, container)
        done, detail = compose.down(project, self._files("compose"), self.release.path, env)
        if not done:
            raise EnvironmentProblem(f"docker compose down of {project} failed: {detail}")
        self._record(colour, None)

    # -- containers ------------------------------------------------------------------

    def containers(self, colour: str) -> list[dict[str, Any]]:
        """Inspect data of the colour's containers and of the keep singletons."""
        projects = [self.project(colour)] + ([self.release.project] if self.release.info.keep else [])
        return [c["inspect"] for p in projects for c in docker.project_containers(p, None, 0)]

    def _stop_first(self) -> list[str]:
        return sorted(s for s, role in self.switch.singletons.items() if role == "stop-first")

    def _later(self) -> list[str] | None:
        """The services to start before the cut-over: all but the stop-first singletons (None: all)."""
        if not self._stop_first():
            return None
        return sorted(s for s in compose.services(self._files("compose")) if self.switch.role(s) != "stop-first")

    def _singleton_containers(self) -> Iterator[str]:
        if self.release.info.keep:
            for item in docker.project_containers(self.release.project, None, 0):
                yield str(item["inspect"]["Name"]).lstrip("/")

    def _join_singletons(self, colour: str) -> None:
        """Each keep singleton answers under its service name in every network of the colour."""
        for item in docker.project_containers(self.release.project, None, 0) if self.release.info.keep else []:
            attrs = item["inspect"]
            service = attrs["Config"]["Labels"].get("com.docker.compose.service", "")
            for network in docker.project_networks(self.project(colour)):
                docker.connect_network(network, attrs["Name"].lstrip("/"), [service])

    def _listeners(self, colour: str) -> list[Listener]:
        by_service: dict[str, list[str]] = {}
        for attrs in self.containers(colour):
            labels = attrs["Config"]["Labels"]
            if labels.get("com.docker.compose.project") == self.project(colour):
                by_service.setdefault(labels.get("com.docker.compose.service", ""), []).append(
                    attrs["Name"].lstrip("/"))
        out = []
        for port in self.release.info.routes:
            servers = sorted(by_service.get(port.service, []))
            if not servers:
                raise EnvironmentProblem(f"routed service {port.service} has no container in {self.project(colour)}")
            out.append(Listener(f"{port.service}-{port.published}", port.mode, port.host_ip, port.published,
                                tuple(f"{s}:{port.target}" for s in servers)))
        return out
