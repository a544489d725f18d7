"""satchel.yaml -> a typed, validated Spec. Every field is documented in docs/SPEC.md."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from .errors import SpecError
from .lifecycle import Lifecycle
from .oci.model import Platform
from .oci.refs import Reference
from .requirements import Requirement
from .requirements import parse as parse_requirements
from .settings import Setting
from .spec_model import DIR_ONLY, ImageModel, SpecModel
from .switching import Switch


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses duplicate keys instead of silently keeping the last one."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise SpecError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


Marks = dict[tuple[Any, ...], tuple[int, int]]


def load_yaml(path: Path) -> Any:
    return load_yaml_marked(path)[0]


def load_yaml_marked(path: Path) -> tuple[Any, Marks]:
    """The document, and the line and column (1-based) of every key and item, by path."""
    try:
        with path.open("rb") as fh:
            loader = _StrictLoader(fh)
            try:
                node = loader.get_single_node()
                return (loader.construct_document(node) if node is not None else None), _marks(node)
            finally:
                loader.dispose()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise SpecError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def _marks(node: yaml.Node | None, at: tuple[Any, ...] = ()) -> Marks:
    out: Marks = {}
    if node is None:
        return out
    out[at] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out |= _marks(value, (*at, key.value))
            out[(*at, key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out |= _marks(item, (*at, i))
    return out


@dataclass(frozen=True)
class RegistryOptions:
    insecure: bool = False
    ca_file: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    ref: Reference
    text: str                          # as written, for messages and the Docker engine
    source: str = "registry"
    path: Path | None = None           # oci:, archive:, dir:
    platforms: tuple[Platform, ...] = ()
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Spec:
    name: str
    version: str
    base: Path                         # the spec's directory; relative paths start here
    images: tuple[ImageSpec, ...] = ()
    compose: tuple[str, ...] = ()
    charts: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    registries: dict[str, RegistryOptions] = field(default_factory=dict, hash=False, compare=False)
    expires: str | None = None
    description: str = ""
    secrets: tuple[str, ...] = ()
    target: str = ""
    trust_add: tuple[str, ...] = ()     # paths of public keys to endorse
    trust_revoke: tuple[str, ...] = ()  # key ids to revoke
    settings: tuple[Setting, ...] = ()
    installer: str | None = None        # path of a Satchel kit that customers' Satchel upgrades to
    lifecycle: Lifecycle = field(default_factory=Lifecycle, hash=False)
    switch: Switch | None = None
    requirements: tuple[Requirement, ...] = ()


def _platforms(value: list[str] | None, where: str) -> tuple[Platform, ...]:
    try:
        return tuple(Platform.parse(v) for v in value or ())
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None


def relative_path(value: Any, where: str) -> str:
    """A path inside the spec's directory, normalised to POSIX form."""
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: expected a path")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise SpecError(f"{where}: {value!r} must be a relative path inside the spec's directory")
    return str(path)


def _paths(values: list[str], key: str) -> tuple[str, ...]:
    out = tuple(relative_path(v, f"{key}[{i}]") for i, v in enumerate(values))
    if len(set(out)) != len(out):
        raise SpecError(f"{key}: a path is listed twice")
    return out


def _image(model: ImageModel | str, i: int, base: Path) -> ImageSpec:
    where = f"images[{i}]"
    image = ImageModel.model_validate({"ref": model}) if isinstance(model, str) else model
    ref = Reference.parse(image.ref)
    kind, _, arg = image.source.partition(":")
    options = {k: getattr(image, k) for k in DIR_ONLY if getattr(image, k) is not None}
    if "platform" in options:
        options["platform"] = _platforms([options["platform"]], where)[0]
    if image.signatures:
        options["signatures"] = True
    return ImageSpec(ref, image.ref, kind, (base / arg) if arg else None, _platforms(image.platforms, where), options)


def parse_spec(doc: Any, base: Path, marks: Marks | None = None, origin: str = "") -> Spec:
    """Structure from the model (spec_model.py), meaning from here; each error names its place."""
    try:
        return _spec(SpecModel.model_validate(doc), base)
    except ValidationError as exc:
        raise SpecError(_located(exc.errors()[0], marks or {}, origin)) from None
    except SpecError as exc:
        raise SpecError(_place(str(exc), marks or {}, origin)) from None


def _spec(m: SpecModel, base: Path) -> Spec:
    images = tuple(_image(obj, i, base) for i, obj in enumerate(m.images))
    refs = [str(i.ref) for i in images]
    if len(set(refs)) != len(refs):
        raise SpecError(f"images: {next(r for r in refs if refs.count(r) > 1)} is listed twice")
    settings = tuple(Setting.from_json(o.model_dump(exclude_unset=True), f"settings[{i}]")
                     for i, o in enumerate(m.settings))
    if len({s.name for s in settings}) != len(settings):
        raise SpecError("settings: a name is declared twice")
    lifecycle = Lifecycle.from_json(m.model_dump(include={"data", "hooks", "health"}, by_alias=True,
                                                 exclude_unset=True, exclude_none=True))
    if (lifecycle.data or lifecycle.hooks) and (not m.compose or m.target == "helm"):
        raise SpecError("data: and hooks: are for Docker Compose releases: they need compose files (and a "
                        "compose target)")
    switch = None
    if m.switch is not None:
        switch = Switch.from_json(m.switch if isinstance(m.switch, str) else
                                  m.switch.model_dump(by_alias=True, exclude_unset=True, exclude_none=True))
        if switch.blue_green and (not m.compose or m.target == "helm"):
            raise SpecError("switch: blue-green is for Docker Compose releases (Kubernetes has rolling updates)")
    return Spec(name=m.name, version=m.version, base=base, images=images, compose=_paths(m.compose, "compose"),
                charts=_paths(m.charts, "charts"), files=_paths(m.files, "files"),
                platforms=_platforms(m.platforms, "platforms"),
                registries={str(h): RegistryOptions(o.insecure, o.ca) if o else RegistryOptions()
                            for h, o in (m.registries or {}).items()},
                expires=str(m.expires) if m.expires is not None else None, description=m.description,
                secrets=tuple(sorted(set(m.secrets))), target=m.target,
                trust_add=tuple(relative_path(p, "keys.add") for p in m.keys.add), trust_revoke=tuple(m.keys.revoke),
                settings=settings, installer=relative_path(m.installer, "installer") if m.installer else None,
                lifecycle=lifecycle, switch=switch, requirements=parse_requirements(m.requirements))


def _located(error: Any, marks: Marks, origin: str) -> str:
    """One pydantic error as Satchel's one line: where, what, and for an unknown key the known one
    it most likely meant."""
    loc = tuple(p for p in error["loc"] if p not in ("str", "ImageModel") and not str(p).startswith("function-"))
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = f"unknown field(s) {loc[-1]}" + (f" (did you mean {close[0]}?)" if close else "") + \
            " (see docs/SPEC.md)"
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[:-1]).lstrip(".")
    elif kind == "missing":
        message = "required (see docs/SPEC.md)"
    return _where(loc, marks, origin) + (f"{dotted}: {message}" if dotted and not message.startswith(
        dotted.split(".")[-1].split("[")[0] + " ") else message)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names (as written in satchel.yaml) of the model at `loc` (list indexes and
    mapping keys skipped)."""
    model: type[BaseModel] = SpecModel
    for part in loc:
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        if field is not None:
            nested = _models_in(field.annotation)
            if not nested:
                return []
            model = nested[0]
    return [f.alias or name for name, f in model.model_fields.items()]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _where(loc: tuple[Any, ...], marks: Marks, origin: str) -> str:
    for n in range(len(loc), -1, -1):
        if loc[:n] in marks:
            line, column = marks[loc[:n]]
            return f"{origin}:{line}:{column}: " if origin else f"line {line}, column {column}: "
    return f"{origin}: " if origin else ""


def _place(message: str, marks: Marks, origin: str) -> str:
    """A SpecError from the meaning checks, placed by the path its message starts with."""
    head = message.split(":", 1)[0].split(" ", 1)[0]
    loc = tuple(int(p) if p.isdigit() else p for p in re.findall(r"[A-Za-z_]+|\d+", head))
    return _where(loc, marks, origin) + message if loc and loc[0] in SpecModel.model_fields else message


def load_spec(path: Path) -> Spec:
    if path.is_dir():
        path = path / "satchel.yaml"
    doc, marks = load_yaml_marked(path)
    return parse_spec(doc, path.parent.resolve(), marks, str(path))

