"""Deployment targets behind one protocol, looked up by name. The names are the list in
bundler/targets.py (what specs and manifests may say); target NAME is the module
installer/targets/NAME.py, whose TARGET implements the protocol. Everything that differs
between targets lives in that module: render, apply, stop, services, the log lines a
rollback report quotes, and what diagnostics collect."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bundler import targets as names
from bundler.errors import SpecError
from bundler.lifecycle import DataVolume, Hook
from bundler.manifest import BundleManifest
from bundler.oci.layout import Layout
from bundler.oci.refs import Reference

if TYPE_CHECKING:
    from ..diagnostics.collect import Collection
    from ..health import Observer
    from ..releases import Release
    from .helm import HelmSettings


@dataclass(frozen=True)
class RenderRequest:
    """What a target gets to write its part of a release directory."""

    manifest: BundleManifest
    store: Layout
    registry: str                       # host[:port] the images were pushed to
    registry_insecure: bool
    dest: Path                          # the release directory being written
    helm: HelmSettings | None = None    # the customer's chart values (Helm only)
    project: str = ""                   # the name the release runs under


class Target(Protocol):
    name: str
    takes_settings: bool                # site configuration applies (satchel config apply)

    def render(self, request: RenderRequest) -> dict[str, Any]:
        """Write the target's files under request.dest; returns release.json fields."""

    def check(self, project: str, owned: list[Path]) -> None:
        """Before any change: can this host deploy here, and is `project` this application's own
        (its files live under one of `owned`)? EnvironmentProblem (exit 4) otherwise."""

    def apply(self, release: Release, wait_timeout: int, observe: Observer) -> tuple[bool, str]:
        """Start the release and wait for it to be healthy: (healthy, detail). `observe` is told
        each service's state while waiting, when the target can see it."""

    def stop(self, release: Release) -> None: ...

    def remove(self, release: Release, volumes: bool) -> None:
        """Take everything the release runs away for good (its data volumes too if asked)."""

    def services(self, release: Release) -> list[dict[str, Any]]:
        """Each service (or pod): service, state, health, image."""

    def drift(self, release: Release) -> list[dict[str, str]]:
        """What runs differently from the release: service, container, kind, detail."""

    def logs(self, release: Release, services: set[str], lines: int) -> dict[str, str]:
        """The last log lines of the named services, unredacted (the caller redacts)."""

    def collect(self, release: Release, c: Collection, since: datetime | None) -> None:
        """Diagnostics: containers (or pods) as facts, their inspect data and logs as files."""


@runtime_checkable
class DataTarget(Protocol):
    """What a target that runs containers with volumes adds: the data a release keeps in its
    volumes (bundler/lifecycle.py), and one-off jobs (hooks) from its images."""

    def data_volume(self, release: Release, key: str) -> dict[str, Any] | None:
        """The engine's volume for the declared name (its Name, Driver, Options, Labels), if it exists."""

    def volume_size(self, release: Release, volume: dict[str, Any]) -> int: ...

    def export_volume(self, release: Release, volume: dict[str, Any]) -> AbstractContextManager[Iterator[bytes]]:
        """The volume's files as a tar stream."""

    def import_volume(self, release: Release, volume: dict[str, Any], archive: Iterable[bytes]) -> None:
        """Replace the volume's files with the archive's; no container may be using it."""

    def quiesce(self, release: Release, data: DataVolume) -> None:
        """Make the volume consistent for a copy, as declared (stop its writers, or run a command)."""

    def run_hook(self, release: Release, hook: Hook) -> tuple[bool, str]:
        """Run the job to its end or its timeout: (succeeded, its output)."""


@runtime_checkable
class WatchedTarget(Protocol):
    """A target whose containers the engine reports on, so that Satchel can watch a release
    after its switch (installer/health.py)."""

    def containers(self, release: Release) -> list[dict[str, Any]]:
        """The engine's inspect data of every container of the release."""


@runtime_checkable
class StagedTarget(Protocol):
    """A target that can start a release next to the one that serves and move the traffic to it
    in one step (blue-green): `apply` then only starts it, and nothing reaches it until `cut_over`."""

    def staged(self, release: Release) -> bool:
        """Does this release switch that way (its bundle says so)?"""

    def cut_over(self, release: Release, wait_timeout: int, observe: Observer) -> tuple[bool, str]:
        """The traffic moves to the started release, the one before stops: (done, why not)."""

    def discard(self, release: Release) -> None:
        """Remove a release that was started but never got the traffic."""

    def traffic(self, release: Release) -> dict[str, Any]:
        """For status and diagnostics: which colour serves, what each colour runs, the proxy's
        state and the ports it publishes."""


def staged_target(release: Release) -> StagedTarget | None:
    """The release's target if the release switches blue-green, else None."""
    target = for_release(release)
    return target if isinstance(target, StagedTarget) and target.staged(release) else None


def watched_target(release: Release) -> WatchedTarget | None:
    target = for_release(release)
    return target if isinstance(target, WatchedTarget) else None


def data_target(release: Release) -> DataTarget | None:
    """The release's target if it keeps data in volumes (snapshots, hooks), else None."""
    target = for_release(release)
    return target if isinstance(target, DataTarget) else None


def local_images(manifest: BundleManifest, registry: str) -> dict[str, str]:
    """Each image the bundle carries (its normalised reference) -> REGISTRY/REPOSITORY@DIGEST."""
    return {str(Reference.parse(i.ref)): f"{registry}/{Reference.parse(i.ref).repository}@{i.digest}"
            for i in manifest.images}


# Targets available without a module under installer/targets: the tests' in-memory one.
REGISTERED: dict[str, Target] = {}


def get(name: str) -> Target:
    if name in REGISTERED:
        return REGISTERED[name]
    if name not in names.TARGETS:
        raise SpecError(f"unknown target {name!r}: choose {' or '.join(names.TARGETS)}")
    target: Target = importlib.import_module(f"{__name__}.{name}").TARGET
    return target


def choose(asked: str | None, manifest: BundleManifest) -> Target:
    """The target an install deploys to: --target, else the bundle's, else from its contents."""
    return get(names.choose(asked, manifest.target, bool(manifest.compose), bool(manifest.charts)))


def for_release(release: Release) -> Target:
    return get(release.info.target)
