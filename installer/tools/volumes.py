"""Docker volumes as tar streams, through the engine's archive API: a container that mounts the
volume is created (never started) from an image the release already has, and the engine reads
or writes the files. No tool is needed inside the image (distroless ones work) and no extra
image is pulled."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from bundler.errors import EnvironmentProblem
from bundler.tools.docker import connect

MOUNT = "/satchel-data"
CHUNK = 1 << 20


def find(project: str, key: str) -> dict[str, Any] | None:
    """The engine's volume that Compose made for `key` of the project's `volumes:` (by its labels)."""
    client = connect()
    try:
        found = client.volumes.list(filters={"label": [f"com.docker.compose.project={project}",
                                                       f"com.docker.compose.volume={key}"]})
        return dict(found[0].attrs) if found else None
    finally:
        client.close()


def size(name: str) -> int:
    """Bytes the volume's files take (the engine's own count; -1 when it does not know)."""
    client = connect()
    try:
        for vol in client.df().get("Volumes") or []:
            if vol.get("Name") == name:
                return int((vol.get("UsageData") or {}).get("Size", -1))
        return -1
    finally:
        client.close()


@contextmanager
def _holder(client: Any, name: str, image: str, mode: str) -> Iterator[Any]:
    """A created, never started container with the volume at MOUNT; removed afterwards."""
    from docker.errors import APIError, ImageNotFound

    try:
        try:
            client.images.get(image)
        except ImageNotFound:
            client.images.pull(image)
        holder = client.containers.create(image, entrypoint=["/satchel-holds-a-volume"], network_disabled=True,
                                          volumes={name: {"bind": MOUNT, "mode": mode}},
                                          labels={"dev.satchel.volume-holder": name})
    except APIError as exc:
        raise EnvironmentProblem(f"cannot mount volume {name}: {exc.explanation or exc}") from None
    try:
        yield holder
    finally:
        holder.remove(force=True)


@contextmanager
def export(name: str, image: str) -> Iterator[Iterator[bytes]]:
    """The volume's files as a tar stream (one top directory, satchel-data/)."""
    from docker.errors import APIError

    client = connect()
    try:
        with _holder(client, name, image, "ro") as holder:
            try:
                chunks, _ = holder.get_archive(MOUNT, chunk_size=CHUNK)
            except APIError as exc:
                raise EnvironmentProblem(f"cannot read volume {name}: {exc.explanation or exc}") from None
            yield chunks
    finally:
        client.close()


def replace(volume: dict[str, Any], image: str, archive: Iterable[bytes]) -> None:
    """Make the volume hold exactly the archive's files: it is removed and created again with the
    driver, options and labels recorded with the snapshot (so Compose still knows it as its own),
    then filled. Every container using it must be gone. Safe to repeat after an interruption."""
    from docker.errors import APIError, NotFound

    name = volume["Name"]
    client = connect()
    try:
        with suppress(NotFound):
            client.volumes.get(name).remove()
        client.volumes.create(name=name, driver=volume.get("Driver") or "local",
                              driver_opts=volume.get("Options") or None, labels=volume.get("Labels") or None)
        with _holder(client, name, image, "rw") as holder:
            holder.put_archive("/", archive)
    except APIError as exc:
        raise EnvironmentProblem(f"cannot restore volume {name}: {exc.explanation or exc}") from None
    finally:
        client.close()
