"""The Docker Compose target."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bundler.compose_vars import interpolate_defaults
from bundler.errors import BundleError, EnvironmentProblem
from bundler.lifecycle import DataVolume, Hook
from bundler.oci.layout import write_atomic
from bundler.oci.model import Descriptor
from bundler.oci.refs import Reference
from bundler.switching import Switch, routed_ports
from bundler.tools import docker

from .. import health
from ..diagnostics.redact import mask_env
from ..tools import compose, volumes
from . import RenderRequest, bluegreen, local_images

if TYPE_CHECKING:
    from ..diagnostics.collect import Collection
    from ..health import Observer
    from ..releases import Release

MAX_COMPOSE_BYTES = 1 << 20


def local_ref(images: dict[str, str], image: str) -> str:
    local = images.get(str(Reference.parse(interpolate_defaults(image, "compose"))))
    if local is None:
        raise BundleError(f"compose file names image {image}, which the bundle does not carry")
    return local


class ComposeTarget:
    """Compose files rewritten to pull every image from the local registry by digest;
    `docker compose up -d --wait` under the release's fixed project name. A release without
    compose files only loads images: nothing to start."""

    name = "compose"
    takes_settings = True

    def render(self, request: RenderRequest) -> dict[str, Any]:
        """Each compose file, rewritten, under dest/compose/; a blue-green release's split in
        what each colour runs (compose/) and the singletons that run once (keep/)."""
        out, keep, images = [], [], local_images(request.manifest, request.registry)
        switch = request.manifest.switch if request.manifest.switch and request.manifest.switch.blue_green else None
        services: dict[str, Any] = {}
        for entry in request.manifest.compose:
            data = request.store.read_small(Descriptor("", entry.digest, entry.size), MAX_COMPOSE_BYTES)
            doc: Any = yaml.safe_load(data)
            for service in (doc.get("services") or {}).values():
                if isinstance(service, dict) and service.get("image"):
                    service["image"] = local_ref(images, str(service["image"]))
            services.update(doc.get("services") or {})
            kept = None
            if switch:
                doc, kept = bluegreen.split(doc, switch, request.project)
            write_atomic(request.dest / "compose" / entry.path, yaml.safe_dump(doc, sort_keys=False).encode())
            out.append(f"compose/{entry.path}")
            if kept:
                write_atomic(request.dest / "keep" / entry.path, yaml.safe_dump(kept, sort_keys=False).encode())
                keep.append(f"keep/{entry.path}")
        if not switch:
            return {"compose": tuple(out)}
        return {"compose": tuple(out), "keep": tuple(keep), "routes": tuple(routed_ports(switch, services))}

    def check(self, project: str, owned: list[Path]) -> None:
        """The engine answers, Compose runs, and every container of the project came from a
        compose file of this application (never take over another root's or a person's)."""
        docker.ping()
        compose.check_runnable()
        mine = [d.resolve() for d in owned]
        foreign = sorted(name for name, files in docker.project_config_files(project).items()
                         if not files or not all(any(Path(f).is_relative_to(d) for d in mine)
                                                 for f in files.split(",")))
        if foreign:
            raise EnvironmentProblem(f"Compose project {project!r} has containers this Satchel root did not create "
                                     f"({', '.join(foreign)}); install under another name with --project NAME, "
                                     "or remove them")

    def _files(self, release: Release) -> list[Path]:
        return [release.path / rel for rel in release.info.compose]

    def _keep(self, release: Release) -> list[Path]:
        return [release.path / rel for rel in release.info.keep]

    def _env(self, release: Release) -> dict[str, str]:
        """The release's settings (secrets included), kept outside the release directory."""
        return release.settings()

    def apply(self, release: Release, wait_timeout: int, observe: Observer) -> tuple[bool, str]:
        """`compose up -d` (which itself waits for depends_on conditions), then Satchel's own
        health judgement of every container until all are ready or `wait_timeout` has passed
        (counted from when the containers run, as `compose up --wait` counted it)."""
        if not release.info.compose:
            return True, "no services"
        env = self._env(release)
        if colours := self._colours(release):
            return colours.start(wait_timeout, observe, env)
        self._leave_blue_green(release, env)
        ok, detail = compose.up(release.project, self._files(release), release.path, wait_timeout, env)
        if not ok:
            return False, detail
        return health.wait(lambda: self.containers(release), wait_timeout, observe)

    # -- blue-green (the StagedTarget protocol; installer/targets/bluegreen.py) -----------

    def _colours(self, release: Release) -> bluegreen.Colours | None:
        switch = release.manifest().switch
        return bluegreen.Colours(release, switch) if switch and switch.blue_green and release.info.compose else None

    def _leave_blue_green(self, release: Release, env: dict[str, str]) -> None:
        """A recreate release after a blue-green one: the colours and the proxy go first."""
        leftover = bluegreen.Colours(release, Switch())
        if leftover.state_file.exists() or leftover.proxy.config.exists():
            leftover.retire(env)

    def staged(self, release: Release) -> bool:
        return self._colours(release) is not None

    def cut_over(self, release: Release, wait_timeout: int, observe: Observer) -> tuple[bool, str]:
        colours = self._colours(release)
        return colours.cut_over(wait_timeout, observe, self._env(release)) if colours else (True, "")

    def discard(self, release: Release) -> None:
        if colours := self._colours(release):
            colours.discard(self._env(release))

    def traffic(self, release: Release) -> dict[str, Any]:
        colours = self._colours(release)
        return colours.traffic() if colours else {}

    def _places(self, release: Release) -> list[bluegreen.Place]:
        """Where the release's containers run: one project, or its colour and its singletons."""
        if not release.info.compose:
            return []
        colours = self._colours(release)
        return colours.places() if colours else [bluegreen.Place(release.project, self._files(release))]

    def _place_of(self, release: Release, service: str) -> bluegreen.Place:
        places = self._places(release)
        return next((p for p in places if service in compose.services(p.files)), places[0])

    # ------------------------------------------------------------------------------------

    def containers(self, release: Release) -> list[dict[str, Any]]:
        return [c["inspect"] for p in self._places(release) for c in docker.project_containers(p.project, None, 0)]

    def stop(self, release: Release) -> None:
        env = self._env(release)
        for place in self._places(release):
            compose.down(place.project, place.files, release.path, env)
        if colours := self._colours(release):
            colours.retire(env)

    def remove(self, release: Release, volumes: bool) -> None:
        """Containers and networks of the project (its colours and its proxy); its volumes only
        when asked."""
        if not release.info.compose:
            return
        env = self._env(release)
        if colours := self._colours(release):
            colours.retire(env)
        done, detail = compose.down(release.project, self._files(release) + self._keep(release), release.path, env,
                                    volumes)
        if not done:
            raise EnvironmentProblem(f"docker compose down of {release.project} failed: {detail}")

    def services(self, release: Release) -> list[dict[str, Any]]:
        env = self._env(release)
        return [{"service": s.get("Service"), "state": s.get("State"), "health": s.get("Health") or "",
                 "image": s.get("Image"), **({"project": p.project} if p.project != release.project else {})}
                for p in self._places(release) for s in compose.ps(p.project, p.files, release.path, env)]

    def drift(self, release: Release) -> list[dict[str, str]]:
        """Containers that run differently from the release: another image or another
        configuration than its compose files say, a service with no container, a container
        of no service of the release."""
        found = []
        env = self._env(release)
        for place in self._places(release):
            images = {name: str(v["image"]) for name, v in compose.services(place.files).items()
                      if isinstance(v, dict) and v.get("image")}
            hashes = compose.config_hashes(place.project, place.files, release.path, env)
            seen = set()
            for item in docker.project_containers(place.project, None, 0):
                attrs = item["inspect"]
                labels, name = attrs["Config"]["Labels"], attrs["Name"].lstrip("/")
                service = labels.get("com.docker.compose.service", "")
                seen.add(service)
                want = images.get(service)
                if service not in hashes:
                    found.append({"service": service, "container": name, "kind": "extra",
                                  "detail": "a container of a service the release does not have"})
                elif want and (attrs["Config"]["Image"] != want or attrs["Image"] != docker.image_id(want)):
                    found.append({"service": service, "container": name, "kind": "image",
                                  "detail": f"runs {attrs['Config']['Image']}; the release has {want}"})
                elif labels.get("com.docker.compose.config-hash") != hashes[service]:
                    found.append({"service": service, "container": name, "kind": "config",
                                  "detail": "its configuration differs from the release's compose files"})
            found += [{"service": service, "container": "", "kind": "missing", "detail": "no container"}
                      for service in sorted(set(hashes) - seen)]
        return found

    # -- data (the DataTarget protocol) ---------------------------------------------

    def data_volume(self, release: Release, key: str) -> dict[str, Any] | None:
        return volumes.find(release.project, key)

    def volume_size(self, release: Release, volume: dict[str, Any]) -> int:
        return volumes.size(volume["Name"])

    def export_volume(self, release: Release, volume: dict[str, Any]) -> AbstractContextManager[Iterator[bytes]]:
        return volumes.export(volume["Name"], self._any_image(release))

    def import_volume(self, release: Release, volume: dict[str, Any], archive: Iterable[bytes]) -> None:
        volumes.replace(volume, self._any_image(release), archive)

    def quiesce(self, release: Release, data: DataVolume) -> None:
        env = self._env(release)
        if data.quiesce == "command":
            place = self._place_of(release, data.service)
            ok, out = compose.job(place.project, place.files, release.path,
                                  ["exec", "-T", data.service, *data.command], 600, env)
            if not ok:
                raise EnvironmentProblem(f"making volume {data.volume} consistent ({data.service}: "
                                         f"{' '.join(data.command)}) failed: {(out.splitlines() or ['no output'])[-1]}")
        elif data.quiesce == "stop" and (writers := self._mounting(release, data.volume)):
            for place in self._places(release):
                mine = [w for w in writers if w in compose.services(place.files)]
                ok, out = compose.job(place.project, place.files, release.path, ["stop", "-t", "10", *mine], 120,
                                      env) if mine else (True, "")
                if not ok:
                    raise EnvironmentProblem(f"cannot stop {', '.join(mine)}: "
                                             f"{(out.splitlines() or ['no output'])[-1]}")

    def run_hook(self, release: Release, hook: Hook) -> tuple[bool, str]:
        """`compose run --rm --no-deps` of the hook's service: its image, environment and volumes.
        A hook that runs out of time is removed: Compose, killed, would leave it running."""
        name = f"{release.project}-hook-{os.getpid()}"
        place = self._place_of(release, hook.service)
        ok, output = compose.job(place.project, place.files, release.path,
                                 ["run", "--rm", "--no-deps", "-T", "--name", name, hook.service, *hook.command],
                                 hook.timeout, self._env(release))
        if not ok:
            docker.remove_container(name)
        return ok, output

    def _services(self, release: Release) -> dict[str, Any]:
        return compose.services(self._files(release) + self._keep(release))

    def _any_image(self, release: Release) -> str:
        """An image of the release (pinned by digest to the local registry) to mount volumes with."""
        images = sorted({str(s["image"]) for s in self._services(release).values() if s.get("image")})
        if not images:
            raise EnvironmentProblem(f"release {release.version} has no image to mount its volumes with")
        return images[0]

    def _mounting(self, release: Release, key: str) -> list[str]:
        """The services that mount the named volume (short or long syntax)."""
        def source(mount: Any) -> str:
            return str(mount.get("source", "")) if isinstance(mount, dict) else str(mount).split(":", 1)[0]

        return sorted(name for name, s in self._services(release).items()
                      if any(source(m) == key for m in s.get("volumes") or []))

    def logs(self, release: Release, services: set[str], lines: int) -> dict[str, str]:
        out = {}
        for item in [i for p in self._places(release) for i in docker.project_containers(p.project, None, lines)
                     ] if services else []:
            service = item["inspect"]["Config"]["Labels"].get("com.docker.compose.service")
            if service in services:
                out[service] = item["logs"]
        return out

    def collect(self, release: Release, c: Collection, since: datetime | None) -> None:
        """Every container of the project: inspect data (secret env masked), logs, a summary."""
        manifest = release.manifest()
        marked = set(manifest.secrets) | {s.name for s in manifest.settings if s.secret}
        containers = []
        for item in [i for p in self._places(release)
                     for i in docker.project_containers(p.project, int(since.timestamp()) if since else None)]:
            attrs = item["inspect"]
            env = attrs.get("Config", {}).get("Env") or []
            c.redactor.add_env(env, marked)
            attrs["Config"]["Env"] = [mask_env(e, marked) for e in env]
            name = attrs["Name"].lstrip("/")
            state = attrs.get("State", {})
            containers.append({"name": name, "service": attrs["Config"]["Labels"].get("com.docker.compose.service"),
                               "image": attrs["Config"].get("Image"), "status": state.get("Status"),
                               "health": (state.get("Health") or {}).get("Status", ""),
                               "restart_count": attrs.get("RestartCount", 0), "exit_code": state.get("ExitCode"),
                               "health_log": [str(h.get("Output", "")).strip()[-500:]
                                              for h in ((state.get("Health") or {}).get("Log") or [])[-3:]]})
            c.add_json(f"docker/containers/{name}.json", attrs)
            c.files[f"docker/logs/{name}.log"] = item["logs"]
        c.facts["containers"] = containers
        c.add_json("docker/containers.json", containers)
        if colours := self._colours(release):
            c.facts["switch"] = colours.traffic()
            c.add_json("proxy/traffic.json", c.facts["switch"])
            if colours.proxy.config.exists():
                c.files["proxy/haproxy.cfg"] = colours.proxy.config.read_text()
            if colours.proxy.state() is not None:
                c.files["proxy/proxy.log"] = docker.container_logs(colours.proxy.container, 500)


TARGET = ComposeTarget()
