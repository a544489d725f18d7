"""The Helm target: charts from the local registry, every image rewritten to it by digest
by a post-renderer, values layered as chart defaults < customer files < --set.

Rendering (`helm template` from the registry, through the post-renderer) runs here and is
tested; applying (`helm upgrade --install --atomic --wait`) needs a Kubernetes API server,
which these machines cannot run: that call is one line, not exercised by the tests."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.errors import BundleError, SpecError
from bundler.format import BundleManifest
from bundler.oci.layout import write_atomic
from bundler.oci.refs import Reference, is_loopback
from bundler.tools import helm

from ..push import chart_repository
from . import kube

if TYPE_CHECKING:
    from ..releases import Release

DIR = "helm"


@dataclass(frozen=True)
class HelmSettings:
    namespace: str = "default"
    values: tuple[Path, ...] = ()          # customer override files, lowest first
    sets: tuple[str, ...] = ()             # per-install --set NAME=VALUE, highest
    kubeconfig: str | None = None


def image_map(manifest: BundleManifest, registry: str) -> dict[str, str]:
    return {str(Reference.parse(i.ref)): f"{registry}/{Reference.parse(i.ref).repository}@{i.digest}"
            for i in manifest.images}


def _args(release_dir: Path, info: dict[str, Any], chart: dict[str, str]) -> list[str]:
    """The chart from the registry, values files, --set, namespace and the post-renderer."""
    args = [chart["release"], f"oci://{info['registry']}/{chart_repository(chart['name'])}",
            "--version", chart["version"], "--namespace", info["namespace"]]
    if info["plain_http"]:
        args.append("--plain-http")
    for rel in info["values"]:
        args += ["--values", str(release_dir / rel)]
    for item in info["sets"]:
        args += ["--set", item]
    args += ["--post-renderer", sys.executable]
    for extra in ("-m", "installer.targets.postrender", str(release_dir / DIR / "images.json")):
        args += ["--post-renderer-args", extra]
    return args


def render(manifest: BundleManifest, registry: str, insecure: bool, dest: Path,
           settings: HelmSettings) -> dict[str, Any]:
    """Write helm/ into the release directory: the image map, copies of the customer's
    values files, and every chart rendered exactly as it will be applied. Returns the
    release.json section that apply() needs."""
    if not manifest.charts:
        raise SpecError("the helm target needs a bundle with charts")
    (dest / DIR).mkdir(parents=True, exist_ok=True)
    write_atomic(dest / DIR / "images.json", json.dumps(image_map(manifest, registry), indent=2).encode())
    values = []
    for n, path in enumerate(settings.values):
        try:
            shutil.copyfile(path, dest / DIR / f"values-{n:02d}.yaml")
        except OSError as exc:
            raise SpecError(f"cannot read values file {path}: {exc.strerror}") from None
        values.append(f"{DIR}/values-{n:02d}.yaml")
    info: dict[str, Any] = {"registry": registry, "namespace": settings.namespace, "values": values,
                            "sets": list(settings.sets), "kubeconfig": settings.kubeconfig,
                            "plain_http": insecure or is_loopback(registry), "charts": []}
    for chart in manifest.charts:
        entry = {"name": chart.name, "version": chart.version.replace("+", "_"), "release": chart.name,
                 "rendered": f"{DIR}/{chart.name}.yaml"}
        proc = helm.run(["template", *_args(dest, info, entry)])
        if proc.returncode != 0:
            raise BundleError(f"rendering chart {chart.name} failed: {helm.last_line(proc)}")
        write_atomic(dest / entry["rendered"], proc.stdout.encode())
        info["charts"].append(entry)
    return info


class HelmTarget:
    def apply(self, release: Release, wait_timeout: int) -> tuple[bool, str]:
        info = release.info["helm"]
        env = {"KUBECONFIG": info["kubeconfig"]} if info.get("kubeconfig") else None
        for chart in info["charts"]:
            proc = helm.run(["upgrade", "--install", *_args(release.path, info, chart), "--create-namespace",
                             "--atomic", "--wait", "--timeout", f"{wait_timeout}s"],
                            timeout=wait_timeout + 120, env=env)
            if proc.returncode != 0:
                return False, f"helm upgrade {chart['release']}: {helm.last_line(proc)}"
        return True, "helm releases deployed"

    def stop(self, release: Release) -> None:
        """`--atomic` already removed a failed first install; nothing is left to stop."""

    def services(self, release: Release) -> list[dict[str, Any]]:
        info = release.info["helm"]
        return [{"service": pod["name"], "state": pod["phase"], "health": "ready" if pod["ready"] else "not ready",
                 "image": ", ".join(pod["images"])}
                for chart in info["charts"] for pod in kube.release_pods(info["namespace"], chart["release"],
                                                                        info.get("kubeconfig"))]


HELM = HelmTarget()
