"""The Helm target: charts from the local registry, every image rewritten to it by digest
by a post-renderer, values layered as chart defaults < customer files < --set.

Rendering (`helm template` from the registry, through the post-renderer) runs here and is
tested; applying (`helm upgrade --install --atomic --wait`) needs a Kubernetes API server,
which these machines cannot run: that call is one line, not exercised by the tests."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.errors import BundleError, EnvironmentProblem, SpecError
from bundler.oci.layout import write_atomic
from bundler.oci.refs import is_loopback
from bundler.tools import helm

from ..diagnostics.redact import mask_env
from ..push import chart_repository
from ..releases import HelmChartInfo, HelmInfo
from . import RenderRequest, kube, local_images

if TYPE_CHECKING:
    from ..diagnostics.collect import Collection
    from ..health import Observer
    from ..releases import Release

DIR = "helm"


@dataclass(frozen=True)
class HelmSettings:
    namespace: str = "default"
    values: tuple[Path, ...] = ()          # customer override files, lowest first
    sets: tuple[str, ...] = ()             # per-install --set NAME=VALUE, highest
    kubeconfig: str | None = None


def _args(release_dir: Path, info: HelmInfo, chart: HelmChartInfo) -> list[str]:
    """The chart from the registry, values files, --set, namespace and the post-renderer."""
    args = [chart.release, f"oci://{info.registry}/{chart_repository(chart.name)}",
            "--version", chart.version, "--namespace", info.namespace]
    if info.plain_http:
        args.append("--plain-http")
    for rel in info.values:
        args += ["--values", str(release_dir / rel)]
    for item in info.sets:
        args += ["--set", item]
    args += ["--post-renderer", sys.executable]
    for extra in ("-m", "installer.targets.postrender", str(release_dir / DIR / "images.json")):
        args += ["--post-renderer-args", extra]
    return args


class HelmTarget:
    name = "helm"
    takes_settings = False              # Helm takes --values and --set instead

    def render(self, request: RenderRequest) -> dict[str, Any]:
        """Write helm/ into the release directory: the image map, copies of the customer's
        values files, and every chart rendered exactly as it will be applied."""
        manifest, dest, settings = request.manifest, request.dest, request.helm or HelmSettings()
        if not manifest.charts:
            raise SpecError("the helm target needs a bundle with charts")
        (dest / DIR).mkdir(parents=True, exist_ok=True)
        images = local_images(manifest, request.registry)
        write_atomic(dest / DIR / "images.json", json.dumps(images, indent=2).encode())
        values = []
        for n, path in enumerate(settings.values):
            try:
                shutil.copyfile(path, dest / DIR / f"values-{n:02d}.yaml")
            except OSError as exc:
                raise SpecError(f"cannot read values file {path}: {exc.strerror}") from None
            values.append(f"{DIR}/values-{n:02d}.yaml")
        info = HelmInfo(request.registry, settings.namespace, tuple(values), tuple(settings.sets), settings.kubeconfig,
                        request.registry_insecure or is_loopback(request.registry), ())
        charts = []
        for chart in manifest.charts:
            entry = HelmChartInfo(chart.name, chart.version.replace("+", "_"), chart.name, f"{DIR}/{chart.name}.yaml")
            proc = helm.run(["template", *_args(dest, info, entry)])
            if proc.returncode != 0:
                raise BundleError(f"rendering chart {chart.name} failed: {helm.last_line(proc)}")
            write_atomic(dest / entry.rendered, proc.stdout.encode())
            charts.append(entry)
        return {"helm": replace(info, charts=tuple(charts))}

    def check(self, project: str, owned: list[Path]) -> None:
        """helm must be here; the cluster itself answers only to `helm upgrade`."""
        if helm.helm_binary() is None:
            raise EnvironmentProblem("helm is not on PATH (or set SATCHEL_HELM); the Satchel kit carries it")

    @staticmethod
    def _info(release: Release) -> HelmInfo:
        if release.info.helm is None:
            raise SpecError(f"release {release.version} has no Helm section in release.json")
        return release.info.helm

    def apply(self, release: Release, wait_timeout: int, observe: Observer) -> tuple[bool, str]:
        """`helm --wait` judges readiness here (the pods' states are the cluster's to report)."""
        info = self._info(release)
        env = {"KUBECONFIG": info.kubeconfig} if info.kubeconfig else None
        for chart in info.charts:
            proc = helm.run(["upgrade", "--install", *_args(release.path, info, chart), "--create-namespace",
                             "--atomic", "--wait", "--timeout", f"{wait_timeout}s"],
                            timeout=wait_timeout + 120, env=env)
            if proc.returncode != 0:
                return False, f"helm upgrade {chart.release}: {helm.last_line(proc)}"
        return True, "helm releases deployed"

    def stop(self, release: Release) -> None:
        """`--atomic` already removed a failed first install; nothing is left to stop."""

    def remove(self, release: Release, volumes: bool) -> None:
        """`helm uninstall` each chart's release. Persistent volume claims stay either way
        (Helm never deletes them); `volumes` is not applied here."""
        info = self._info(release)
        env = {"KUBECONFIG": info.kubeconfig} if info.kubeconfig else None
        for chart in info.charts:
            proc = helm.run(["uninstall", chart.release, "--namespace", info.namespace, "--ignore-not-found",
                             "--wait"], env=env)
            if proc.returncode != 0:
                raise EnvironmentProblem(f"helm uninstall {chart.release}: {helm.last_line(proc)}")

    def _pods(self, release: Release) -> list[dict[str, Any]]:
        info = self._info(release)
        return [pod for chart in info.charts
                for pod in kube.release_pods(info.namespace, chart.release, info.kubeconfig)]

    def services(self, release: Release) -> list[dict[str, Any]]:
        return [{"service": pod["name"], "state": pod["phase"], "health": "ready" if pod["ready"] else "not ready",
                 "image": ", ".join(pod["images"])} for pod in self._pods(release)]

    def drift(self, release: Release) -> list[dict[str, str]]:
        """Pods running an image the release does not carry (by reference)."""
        wanted = set(local_images(release.manifest(), self._info(release).registry).values())
        return [{"service": pod["name"], "container": pod["name"], "kind": "image",
                 "detail": f"runs {image}, which is not one of the release's images"}
                for pod in self._pods(release) for image in pod["images"] if image not in wanted]

    def logs(self, release: Release, services: set[str], lines: int) -> dict[str, str]:
        info = self._info(release)
        return {pod["name"]: "".join(kube.pod_logs(info.namespace, pod["name"], container, info.kubeconfig, lines)
                                     for container in pod["containers"])
                for pod in self._pods(release) if pod["name"] in services}

    def collect(self, release: Release, c: Collection, since: datetime | None) -> None:
        """Its pods (as containers), recent events and pod logs."""
        info, marked = self._info(release), set(release.manifest().secrets)
        pods = self._pods(release)
        for pod in pods:
            c.redactor.add_env(pod["env"], marked)
            pod["env"] = [mask_env(e, marked) for e in pod["env"]]
            for container in pod["containers"]:
                c.files[f"kubernetes/logs/{pod['name']}/{container}.log"] = kube.pod_logs(
                    info.namespace, pod["name"], container, info.kubeconfig)
        c.add_json("kubernetes/pods.json", pods)
        c.add_json("kubernetes/events.json", kube.recent_events(info.namespace, info.kubeconfig))
        c.facts["containers"] = [{"name": p["name"], "service": p["name"], "image": ", ".join(p["images"]),
                                  "status": "running" if p["phase"] == "Running" else str(p["phase"]).lower(),
                                  "health": "healthy" if p["ready"] else "unhealthy", "restart_count": p["restarts"],
                                  "exit_code": None} for p in pods]


TARGET = HelmTarget()
