"""Images that compose files and Helm charts refer to, so the vendor need not list them twice."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .compose_vars import interpolate_defaults, merged_services
from .errors import SpecError
from .image_fields import images_in
from .spec import load_yaml
from .tools import helm


def compose_images(path: Path) -> list[str]:
    doc = load_yaml(path)
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise SpecError(f"{path}: no services found")
    images = []
    for name, service in services.items():
        if not isinstance(service, dict):
            raise SpecError(f"{path}: service {name} is not a mapping")
        image = service.get("image")
        if not image:
            raise SpecError(f"{path}: service {name} has only build:, which cannot be installed offline; "
                            "build and tag the image, then set image:")
        images.append(interpolate_defaults(str(image), f"{path}: service {name}"))
    return images


def compose_names(path: Path) -> tuple[set[str], set[str]]:
    """The services and the top-level named volumes a compose file declares."""
    doc = load_yaml(path)
    services = doc.get("services") if isinstance(doc, dict) else None
    volumes = doc.get("volumes") if isinstance(doc, dict) else None
    return set(services or {}), set(volumes or {})


def compose_services(paths: Iterable[Path]) -> dict[str, Any]:
    """Every service of the compose files, the later file's definition winning (as Compose merges)."""
    return merged_services(load_yaml(path) for path in paths)


def _values_images(node: Any, app_version: str) -> Iterator[str]:
    """Images in values.yaml: `image: repo:tag` or `image: {registry, repository, tag, digest}`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            elif key == "image" and isinstance(value, dict) and value.get("repository"):
                repo = str(value["repository"])
                if value.get("registry"):
                    repo = f"{value['registry']}/{repo}"
                if value.get("digest"):
                    yield f"{repo}@{value['digest']}"
                else:
                    yield f"{repo}:{value.get('tag') or app_version or 'latest'}"
            else:
                yield from _values_images(value, app_version)
    elif isinstance(node, list):
        for item in node:
            yield from _values_images(item, app_version)


def _chart_yaml(chart: Path, name: str) -> Any:
    """A top-level YAML file of a chart directory or packaged .tgz (None if absent)."""
    if chart.is_dir():
        return load_yaml(chart / name) if (chart / name).exists() else None
    try:
        with tarfile.open(chart, "r:gz") as tar:
            member = next((m for m in tar.getmembers()
                           if m.name.count("/") == 1 and m.name.endswith("/" + name)), None)
            fh = tar.extractfile(member) if member else None
            return yaml.safe_load(fh.read()) if fh else None
    except (OSError, tarfile.TarError, yaml.YAMLError) as exc:
        raise SpecError(f"{chart} is not a readable Helm chart: {exc}") from None


def chart_metadata(chart: Path) -> dict[str, Any]:
    meta = _chart_yaml(chart, "Chart.yaml")
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise SpecError(f"{chart}: Chart.yaml needs name and version")
    return meta


def chart_images(chart: Path) -> list[str]:
    """Render with helm when it is available (catches hard-coded images); else read values."""
    if helm.helm_binary():
        rendered = helm.template(chart)
        try:
            docs = list(yaml.safe_load_all(rendered))
        except yaml.YAMLError as exc:
            raise SpecError(f"{chart}: helm rendered invalid YAML: {exc}") from None
        return sorted({img for doc in docs for img in images_in(doc)})
    app_version = str(chart_metadata(chart).get("appVersion") or "")
    return sorted(set(_values_images(_chart_yaml(chart, "values.yaml") or {}, app_version)))
