"""satchel.yaml -> a typed, validated Spec. Every field is documented in docs/SPEC.md."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from signing.grammar import APP_NAME, ENV_NAME, KEY_ID, SEMVER

from . import targets
from .errors import SpecError
from .oci.model import Platform
from .oci.refs import Reference
from .settings import Setting

SOURCE_KINDS = ("registry", "docker", "oci", "archive", "dir")
_IMAGE_KEYS = {"ref", "source", "platforms", "platform", "entrypoint", "cmd", "env", "workdir", "user",
               "labels"}
_DIR_ONLY = _IMAGE_KEYS - {"ref", "source", "platforms"}
_TOP_KEYS = {"name", "version", "description", "expires", "platforms", "registries", "images",
             "compose", "charts", "files", "secrets", "target", "keys", "settings", "installer"}


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


def load_yaml(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            return yaml.load(fh, Loader=_StrictLoader)
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise SpecError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None


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


def _platforms(value: Any, where: str) -> tuple[Platform, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: platforms must be a list like [linux/amd64]")
    try:
        return tuple(Platform.parse(v) for v in value)
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


def _paths(doc: dict[str, Any], key: str) -> tuple[str, ...]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise SpecError(f"{key}: expected a list of paths")
    out = tuple(relative_path(v, f"{key}[{i}]") for i, v in enumerate(items))
    if len(set(out)) != len(out):
        raise SpecError(f"{key}: a path is listed twice")
    return out


def _image(obj: Any, i: int, base: Path) -> ImageSpec:
    where = f"images[{i}]"
    if isinstance(obj, str):
        obj = {"ref": obj}
    if not isinstance(obj, dict) or not isinstance(obj.get("ref"), str):
        raise SpecError(f"{where}: expected a mapping with a ref")
    unknown = set(obj) - _IMAGE_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    text = obj["ref"]
    ref = Reference.parse(text)
    source = str(obj.get("source") or "registry")
    kind, _, arg = source.partition(":")
    if kind not in SOURCE_KINDS:
        raise SpecError(f"{where}: unknown source {source!r} (use {', '.join(SOURCE_KINDS)})")
    if (kind in ("oci", "archive", "dir")) != bool(arg):
        raise SpecError(f"{where}: source {source!r} " + ("needs a path, as in dir:./rootfs" if not arg
                                                          else "takes no path"))
    if kind != "dir" and set(obj) & _DIR_ONLY:
        raise SpecError(f"{where}: {', '.join(sorted(set(obj) & _DIR_ONLY))} only apply to dir: sources")
    options = {k: obj[k] for k in _DIR_ONLY if k in obj}
    if "platform" in options:
        try:
            options["platform"] = Platform.parse(str(options["platform"]))
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
    path = (base / arg) if arg else None
    return ImageSpec(ref, text, kind, path, _platforms(obj.get("platforms"), where), options)


def _registries(value: Any) -> dict[str, RegistryOptions]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError("registries: expected a mapping of host -> options")
    out = {}
    for host, opts in value.items():
        opts = opts or {}
        if not isinstance(opts, dict) or set(opts) - {"insecure", "ca"}:
            raise SpecError(f"registries.{host}: only 'insecure' and 'ca' are allowed")
        out[str(host)] = RegistryOptions(bool(opts.get("insecure", False)), opts.get("ca"))
    return out


def parse_spec(doc: Any, base: Path) -> Spec:
    if not isinstance(doc, dict):
        raise SpecError("the spec must be a YAML mapping")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        hints = [f"{k} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(str(k), _TOP_KEYS, n=1))
                 else str(k) for k in sorted(unknown, key=str)]
        raise SpecError(f"unknown field(s) {', '.join(hints)} (see docs/SPEC.md)")
    for required in ("name", "version"):
        if doc.get(required) in (None, ""):
            raise SpecError(f"{required}: required (see docs/SPEC.md)")
    name, version = str(doc.get("name") or ""), str(doc.get("version") or "")
    if not APP_NAME.fullmatch(name):
        raise SpecError(f"name {name!r} must be lowercase letters, digits and dashes (max 64)")
    if not SEMVER.fullmatch(version):
        raise SpecError(f"version {version!r} is not a semantic version like 1.2.3")
    images = doc.get("images") or []
    if not isinstance(images, list):
        raise SpecError("images: expected a list")
    parsed = tuple(_image(obj, i, base) for i, obj in enumerate(images))
    refs = [str(i.ref) for i in parsed]
    if len(set(refs)) != len(refs):
        raise SpecError(f"images: {next(r for r in refs if refs.count(r) > 1)} is listed twice")
    expires = doc.get("expires")
    secrets = doc.get("secrets") or []
    if not isinstance(secrets, list) or not all(isinstance(s, str) and ENV_NAME.fullmatch(s) for s in secrets):
        raise SpecError("secrets: expected a list of environment variable names")
    target = str(doc.get("target") or "")
    if target and target not in targets.TARGETS:
        raise SpecError(f"target {target!r}: choose {' or '.join(targets.TARGETS)}")
    keys = doc.get("keys") or {}
    if not isinstance(keys, dict) or set(keys) - {"add", "revoke"}:
        raise SpecError("keys: expected {add: [KEY.pub, ...], revoke: [KEYID, ...]}")
    revoke = [str(k) for k in keys.get("revoke") or []]
    if not all(KEY_ID.fullmatch(k) for k in revoke):
        raise SpecError("keys.revoke: key ids are 64 lowercase hex digits (satchel keygen prints them)")
    raw_settings = doc.get("settings") or []
    if not isinstance(raw_settings, list):
        raise SpecError("settings: expected a list of {name, type, default, required, secret, description}")
    settings = tuple(Setting.from_json(o, f"settings[{i}]") for i, o in enumerate(raw_settings))
    if len({s.name for s in settings}) != len(settings):
        raise SpecError("settings: a name is declared twice")
    return Spec(settings=settings, name=name, version=version, base=base, images=parsed, compose=_paths(doc, "compose"),
                charts=_paths(doc, "charts"), files=_paths(doc, "files"),
                platforms=_platforms(doc.get("platforms"), "platforms"),
                registries=_registries(doc.get("registries")),
                expires=str(expires) if expires is not None else None,
                description=str(doc.get("description") or ""), secrets=tuple(sorted(set(secrets))),
                target=target, trust_add=tuple(relative_path(p, "keys.add") for p in keys.get("add") or []),
                trust_revoke=tuple(revoke),
                installer=relative_path(doc["installer"], "installer") if doc.get("installer") else None)


def load_spec(path: Path) -> Spec:
    if path.is_dir():
        path = path / "satchel.yaml"
    return parse_spec(load_yaml(path), path.parent.resolve())

