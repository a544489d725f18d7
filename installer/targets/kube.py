"""The Kubernetes API, through the official client: the only code that talks to a cluster
for status and diagnostics. Kept thin: list pods of a release, recent events, pod logs.
Tested against recorded API responses; not run against a live cluster here."""

from __future__ import annotations

from typing import Any

from bundler.errors import EnvironmentProblem


def _api(kubeconfig: str | None) -> Any:
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise EnvironmentProblem("the Helm target needs the Kubernetes client: pip install 'satchel[helm]' "
                                 "(the Satchel kit carries it)") from None

    try:
        return client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        raise EnvironmentProblem(f"cannot load the kubeconfig ({exc}); pass --kubeconfig") from None


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, **kwargs, _request_timeout=20)
    except ApiException as exc:
        raise EnvironmentProblem(f"the Kubernetes API refused {what}: {exc.status} {exc.reason}") from None
    except HTTPError as exc:
        raise EnvironmentProblem(f"the Kubernetes API is unreachable ({what}): {exc}") from None


def release_pods(namespace: str, release: str, kubeconfig: str | None) -> list[dict[str, Any]]:
    """Pods Helm labelled with the release: phase, readiness, restarts, images, env names."""
    api = _api(kubeconfig)
    pods = _call("listing pods", api.list_namespaced_pod, namespace,
                 label_selector=f"app.kubernetes.io/instance={release}")
    out = []
    for pod in pods.items:
        statuses = pod.status.container_statuses or []
        out.append({
            "name": pod.metadata.name, "phase": pod.status.phase,
            "ready": bool(statuses) and all(s.ready for s in statuses),
            "restarts": sum(s.restart_count or 0 for s in statuses),
            "images": [c.image for c in pod.spec.containers],
            "containers": [c.name for c in pod.spec.containers],
            "env": [f"{e.name}={e.value}" for c in pod.spec.containers for e in (c.env or []) if e.value is not None],
        })
    return out


def recent_events(namespace: str, kubeconfig: str | None, limit: int = 100) -> list[dict[str, Any]]:
    api = _api(kubeconfig)
    events = _call("listing events", api.list_namespaced_event, namespace, limit=limit)
    return [{"type": e.type, "reason": e.reason, "object": f"{e.involved_object.kind}/{e.involved_object.name}",
             "message": e.message, "count": e.count} for e in events.items]


def pod_logs(namespace: str, pod: str, container: str, kubeconfig: str | None, tail: int = 500) -> str:
    api = _api(kubeconfig)
    return str(_call(f"logs of {pod}", api.read_namespaced_pod_log, pod, namespace, container=container,
                     tail_lines=tail))
