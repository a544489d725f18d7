"""satchel.yaml as pydantic models: the structure (every field, its type, what is required,
nothing unknown) and the published JSON schema (`satchel schema`, docs/satchel.schema.json).
spec.py turns a validated model into the Spec the build uses and places every error at its
file, line and column."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from signing.grammar import APP_NAME, ENV_NAME, KEY_ID, SEMVER

from . import targets

SOURCE_KINDS = ("registry", "docker", "oci", "archive", "dir")
DIR_ONLY = ("platform", "entrypoint", "cmd", "env", "workdir", "user", "labels")


def _each(pattern: re.Pattern[str], values: list[str], message: str) -> list[str]:
    if not all(pattern.fullmatch(v) for v in values):
        raise ValueError(message)
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageModel(_Strict):
    """One image: where to take it from, and for a dir: source, how to describe it."""

    ref: str = Field(description="The image reference, as the compose files and charts name it.")
    source: str = Field("registry", description="registry | docker | oci:PATH | archive:PATH | dir:PATH")
    platforms: list[str] | None = Field(None, description="Platforms to keep, like [linux/amd64].")
    platform: str | None = Field(None, description="dir: only: the platform of the image made.")
    signatures: bool = Field(False, description="registry: only: also bundle the cosign signature and attestation "
                                                "the image carries (tags sha256-DIGEST.sig and .att).")
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] | list[str] | None = None
    workdir: str | None = None
    user: str | None = None
    labels: dict[str, str] | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, source: str) -> str:
        kind, _, arg = source.partition(":")
        if kind not in SOURCE_KINDS:
            raise ValueError(f"unknown source {source!r} (use {', '.join(SOURCE_KINDS)})")
        if (kind in ("oci", "archive", "dir")) != bool(arg):
            raise ValueError(f"source {source!r} " + ("needs a path, as in dir:./rootfs" if not arg
                                                      else "takes no path"))
        return source

    @model_validator(mode="after")
    def _dir_only(self) -> ImageModel:
        given = sorted(k for k in DIR_ONLY if getattr(self, k) is not None)
        if given and not self.source.startswith("dir:"):
            raise ValueError(f"{', '.join(given)} only apply to dir: sources")
        if self.signatures and self.source != "registry":
            raise ValueError("signatures: only applies to images from a registry")
        return self


class RegistryModel(_Strict):
    insecure: bool = False
    ca: str | None = Field(None, description="A CA file for this registry's TLS certificate.")


class KeysModel(_Strict):
    add: list[str] = Field(default_factory=list, description="Public keys (files) this bundle endorses.")
    revoke: list[str] = Field(default_factory=list, description="Key ids this bundle revokes.")

    @field_validator("revoke")
    @classmethod
    def _key_ids(cls, ids: list[str]) -> list[str]:
        return _each(KEY_ID, ids, "key ids are 64 lowercase hex digits (satchel keygen prints them)")


class SettingModel(_Strict):
    name: str
    type: Literal["string", "integer", "boolean", "port"] = "string"
    default: str | int | bool | None = None
    required: bool = False
    secret: bool = False
    description: str = ""


Duration = Annotated[int | str, Field(description="Seconds, or a duration like 30s, 5m, 2h.")]


class DataVolumeModel(_Strict):
    """A named volume that holds the application's data: snapshotted before every switch."""

    volume: str = Field(description="The volume's name under the compose files' top-level `volumes:`.")
    quiesce: Literal["stop", "command", "none"] = Field(
        "stop", description="Before the snapshot: stop the services that mount it, run `command` in `service`, "
                            "or nothing.")
    service: str | None = None
    command: list[str] | None = None
    secret: bool = False


class HookModel(_Strict):
    """A one-off job run from the release's own image, as one of its services."""

    service: str
    command: list[str]
    timeout: Duration = 300


class HooksModel(_Strict):
    before_switch: HookModel | None = Field(None, alias="before-switch",
                                            description="With the new release's image, on the snapshotted data, "
                                                        "before the old release stops (migrations).")
    after_switch: HookModel | None = Field(None, alias="after-switch", description="Once healthy (smoke tests).")
    before_rollback: HookModel | None = Field(None, alias="before-rollback")


class HealthModel(_Strict):
    """The health policy after a switch, and how long to keep watching."""

    initial_delay: Duration = Field(30, alias="initial-delay")
    period: Duration = 15
    timeout: Duration = 5
    failure_threshold: int = Field(3, alias="failure-threshold")
    watch: Duration = Field(0, description="Roll back automatically if the release fails within this window.")


class SwitchModel(_Strict):
    """How a release replaces the one before it (docs/BLUE-GREEN.md)."""

    strategy: Literal["recreate", "blue-green"] = "recreate"
    drain: Duration = Field(10, description="After the cut-over, how long open connections to the old release "
                                            "may take to finish.")
    routes: dict[str, Literal["http", "tcp"]] | None = Field(
        None, description="Services whose published ports move to the managed front proxy, and how it proxies them.")
    singletons: dict[str, Literal["keep", "stop-first"]] | None = Field(
        None, description="Services that must not run twice: keep (runs once, across the switch) or stop-first "
                          "(stopped in the old release just before the cut-over).")


Paths = Annotated[list[str], Field(description="Paths relative to the spec's directory.")]


class SpecModel(_Strict):
    """satchel.yaml: what a bundle carries and how it is installed (docs/SPEC.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="satchel.yaml")

    name: str = Field(description="The application's name: lowercase letters, digits and dashes.")
    version: str = Field(description="A semantic version, like 1.2.3.")
    description: str = ""
    expires: Any = Field(None, description="When the bundle stops being accepted (a UTC time or a duration "
                                           "like 365d from the build).")
    platforms: list[str] | None = None
    registries: dict[str, RegistryModel | None] | None = None
    images: list[ImageModel | str] = Field(default_factory=list)
    compose: Paths = Field(default_factory=list)
    charts: Paths = Field(default_factory=list)
    files: Paths = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list, description="Environment variable names to redact.")
    target: str = Field("", description=f"Where to deploy: {' or '.join(targets.TARGETS)} (default: from the "
                                        "contents; compose files win over charts).")
    keys: KeysModel = Field(default_factory=KeysModel)
    settings: list[SettingModel] = Field(default_factory=list)
    installer: str | None = Field(None, description="A Satchel kit customers' Satchel upgrades to.")
    data: list[DataVolumeModel] = Field(default_factory=list)
    hooks: HooksModel | None = None
    health: HealthModel | None = None
    switch: Literal["recreate", "blue-green"] | SwitchModel | None = None
    requirements: dict[str, Any] | None = Field(
        None, description="What a host needs: cpus, memory, disk-state, disk-docker, docker, compose, kernel, cgroup, "
                          "selinux, apparmor, sysctl; each a value or {want: VALUE, level: strict|warn} "
                          "(docs/PREFLIGHT.md).")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, doc: Any) -> Any:
        """`images:` with nothing after it means no images, as in YAML's own reading of it."""
        return {k: v for k, v in doc.items() if v is not None} if isinstance(doc, dict) else doc

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, name: Any) -> str:
        return _each(APP_NAME, [str(name)], f"name {str(name)!r} must be lowercase letters, digits and dashes "
                                            "(max 64)")[0]

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, version: Any) -> str:
        return _each(SEMVER, [str(version)], f"version {str(version)!r} is not a semantic version like 1.2.3")[0]

    @field_validator("target")
    @classmethod
    def _target(cls, target: str) -> str:
        if target and target not in targets.TARGETS:
            raise ValueError(f"target {target!r}: choose {' or '.join(targets.TARGETS)}")
        return target

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, names: list[str]) -> list[str]:
        return _each(ENV_NAME, names, "expected a list of environment variable names")
