"""The local Docker engine, through the Docker SDK."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import EnvironmentProblem, SpecError


def connect() -> Any:
    import docker  # imported lazily: the verify path must not need it
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException:
        # The SDK's text is a chain of reprs; the address is what the operator can act on.
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise EnvironmentProblem(f"the Docker engine is not reachable at {where}; start dockerd "
                                 "or set DOCKER_HOST") from None
    return client


def ping() -> None:
    """EnvironmentProblem (exit 4) unless the engine answers."""
    connect().close()


def project_config_files(project: str) -> dict[str, str]:
    """Each container of a Compose project (running or not) -> the compose files it came from."""
    client = connect()
    try:
        return {c.name: c.labels.get("com.docker.compose.project.config_files", "")
                for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}
    finally:
        client.close()


def save_image(ref: str, dest: Path) -> None:
    """`docker save` one image into dest, streamed to disk."""
    from docker.errors import APIError, ImageNotFound

    client = connect()
    try:
        image = client.images.get(ref)
        named = ref if ref in image.tags else False
        tmp = dest.with_name(dest.name + ".part")
        with tmp.open("wb") as fh:
            for chunk in image.save(chunk_size=1 << 20, named=named):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(dest)
    except ImageNotFound:
        raise SpecError(f"image {ref} is not in the local Docker engine (docker pull or build it "
                        "first)") from None
    except APIError as exc:
        raise EnvironmentProblem(f"docker save {ref} failed: {exc.explanation or exc}") from None
    finally:
        client.close()


def engine_report() -> dict[str, Any]:
    """`docker version` and `docker info` as data."""
    client = connect()
    try:
        return {"version": client.version(), "info": client.info()}
    finally:
        client.close()


def project_containers(project: str, log_since: int | None, log_lines: int = 500) -> list[dict[str, Any]]:
    """Inspect data and recent logs (none when log_lines is 0) of every container of a Compose project."""
    client = connect()
    try:
        out = []
        for container in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
            logs = container.logs(since=log_since, tail=log_lines, timestamps=True) if log_lines else b""
            out.append({"inspect": container.attrs, "logs": logs.decode(errors="replace")})
        return out
    finally:
        client.close()


def project_networks(project: str) -> list[str]:
    """Names of the networks Compose made for a project."""
    client = connect()
    try:
        return sorted(n.name for n in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}))
    finally:
        client.close()


def published_ports() -> dict[tuple[int, str], list[str]]:
    """(host port, protocol) -> the running containers that publish it."""
    client = connect()
    try:
        out: dict[tuple[int, str], list[str]] = {}
        for c in client.containers.list():
            for key, bindings in (c.attrs["NetworkSettings"].get("Ports") or {}).items():
                for b in bindings or []:
                    out.setdefault((int(b["HostPort"]), key.split("/")[1]), []).append(c.name)
        return out
    finally:
        client.close()


def image_id(ref: str) -> str | None:
    """The local engine's id for an image reference, or None when it does not have it."""
    from docker.errors import ImageNotFound

    client = connect()
    try:
        return str(client.api.inspect_image(ref)["Id"])
    except ImageNotFound:
        return None
    finally:
        client.close()


def import_image(tag: str, rootfs: Path) -> None:
    """`docker import` a root file system tar as `tag`, unless the engine already has it."""
    from docker.errors import APIError, ImageNotFound

    client = connect()
    try:
        try:
            client.images.get(tag)
            return
        except ImageNotFound:
            pass
        repository, _, version = tag.rpartition(":")
        client.api.import_image_from_file(str(rootfs), repository=repository, tag=version)
    except APIError as exc:
        raise EnvironmentProblem(f"docker import of {tag} failed: {exc.explanation or exc}") from None
    finally:
        client.close()


def container_state(name: str) -> dict[str, Any] | None:
    """`State` of the named container, or None when there is none."""
    from docker.errors import NotFound

    client = connect()
    try:
        return dict(client.api.inspect_container(name)["State"])
    except NotFound:
        return None
    finally:
        client.close()


def container_labels(name: str) -> dict[str, str]:
    """Labels of the named container ({} when there is none)."""
    from docker.errors import NotFound

    client = connect()
    try:
        return dict(client.api.inspect_container(name)["Config"]["Labels"] or {})
    except NotFound:
        return {}
    finally:
        client.close()


def run_service(name: str, image: str, command: list[str], mounts: dict[str, tuple[str, str]],
                labels: dict[str, str], network: str = "host", ports: dict[str, tuple[str, int]] | None = None) -> None:
    """Start a long-lived container (on the host network unless told) that Docker restarts after
    a crash, a daemon restart or a reboot. `mounts` maps host path -> (container path, mode);
    `ports` maps "PORT/tcp" in the container -> (host address, host port)."""
    from docker.errors import APIError

    client = connect()
    try:
        client.containers.run(image, command[1:], entrypoint=command[:1], name=name, detach=True,
                              network=None if network == "host" else network,
                              network_mode="host" if network == "host" else None, ports=ports or None,
                              labels=labels, restart_policy={"Name": "always"},
                              volumes={host: {"bind": path, "mode": mode} for host, (path, mode) in mounts.items()})
    except APIError as exc:
        raise EnvironmentProblem(f"cannot start container {name}: {exc.explanation or exc}") from None
    finally:
        client.close()


def ensure_network(name: str, labels: dict[str, str]) -> None:
    """A bridge network of that name (created if missing)."""
    from docker.errors import APIError

    client = connect()
    try:
        if not client.networks.list(names=[name]):
            client.networks.create(name, driver="bridge", labels=labels)
    except APIError as exc:
        raise EnvironmentProblem(f"cannot create network {name}: {exc.explanation or exc}") from None
    finally:
        client.close()


def connect_network(network: str, container: str, aliases: list[str] | None = None) -> None:
    """Attach a container to a network (with DNS aliases there); already attached is fine."""
    from docker.errors import APIError

    client = connect()
    try:
        attached = client.api.inspect_container(container)["NetworkSettings"]["Networks"] or {}
        if network not in attached:
            client.api.connect_container_to_network(container, network, aliases=aliases)
    except APIError as exc:
        raise EnvironmentProblem(f"cannot attach {container} to network {network}: {exc.explanation or exc}") from None
    finally:
        client.close()


def disconnect_network(network: str, container: str) -> None:
    """Detach a container from a network; not attached (or either gone) is fine."""
    from docker.errors import APIError, NotFound

    client = connect()
    try:
        client.api.disconnect_container_from_network(container, network, force=True)
    except NotFound:
        pass
    except APIError as exc:
        if "is not connected" not in str(exc.explanation):
            raise EnvironmentProblem(f"cannot detach {container} from {network}: {exc.explanation or exc}") from None
    finally:
        client.close()


def remove_network(name: str) -> None:
    from docker.errors import APIError, NotFound

    client = connect()
    try:
        for net in client.networks.list(names=[name]):
            net.remove()
    except NotFound:
        pass
    except APIError as exc:
        raise EnvironmentProblem(f"cannot remove network {name}: {exc.explanation or exc}") from None
    finally:
        client.close()


def start_container(name: str) -> None:
    from docker.errors import APIError

    client = connect()
    try:
        client.api.start(name)
    except APIError as exc:
        raise EnvironmentProblem(f"cannot start container {name}: {exc.explanation or exc}") from None
    finally:
        client.close()


def container_logs(name: str, lines: int = 5) -> str:
    client = connect()
    try:
        return bytes(client.api.logs(name, tail=lines)).decode(errors="replace")
    finally:
        client.close()


def remove_container(name: str) -> None:
    """Stop and remove the named container; nothing happens when there is none."""
    from docker.errors import NotFound

    client = connect()
    try:
        client.api.remove_container(name, force=True)
    except NotFound:
        pass
    finally:
        client.close()



def exec_in(name: str, command: list[str]) -> str:
    """Run a command in the named running container: its output; EnvironmentProblem unless it exits 0."""
    from docker.errors import APIError

    client = connect()
    try:
        code, output = client.containers.get(name).exec_run(command)
    except APIError as exc:
        raise EnvironmentProblem(f"cannot run {command[0]} in {name}: {exc.explanation or exc}") from None
    finally:
        client.close()
    text = bytes(output).decode(errors="replace")
    if code != 0:
        last = (text.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentProblem(f"{' '.join(command[:2])} in {name} failed (exit {code}): {last}")
    return text
