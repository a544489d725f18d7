"""Is a started release healthy? Judged by Satchel from the engine's own view of each
container (state, health check, exit code, OOM kill, restart count), not by `compose up --wait`:
so that a crash loop fails in seconds instead of at the timeout, a one-shot job that finished
counts as done, the operator sees every service's state while waiting, and the same judgement
serves the watch after the switch. `judge` is pure; `wait` and `watch` poll."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bundler.lifecycle import HealthPolicy

READY, PENDING, FAILED = "ready", "pending", "failed"
_RANK = {READY: 0, PENDING: 1, FAILED: 2}
_RESTARTING_POLICIES = ("always", "unless-stopped", "on-failure")


@dataclass(frozen=True)
class Judgement:
    verdict: str        # READY, PENDING or FAILED
    text: str           # what an operator reads: "healthy", "exited with code 3", ...


def container(attrs: dict[str, Any], restarts_allowed: int) -> Judgement:
    """One container's inspect data, judged. A container whose restart policy brings it back
    fails once it has restarted `restarts_allowed` times (a crash loop), or at once on an OOM kill."""
    state = attrs.get("State") or {}
    status, code = str(state.get("Status", "")), int(state.get("ExitCode") or 0)
    health = str((state.get("Health") or {}).get("Status", ""))
    restarts = int(attrs.get("RestartCount") or 0)
    policy = str(((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no")
    if state.get("OOMKilled"):
        return Judgement(FAILED, "killed: out of memory")
    if restarts >= restarts_allowed > 0:
        return Judgement(FAILED, f"crash loop: restarted {restarts} times (last exit code {code})")
    if status == "running":
        if health == "unhealthy":
            probe = ((state.get("Health") or {}).get("Log") or [{}])[-1].get("Output", "")
            last = (str(probe).strip().splitlines() or [""])[-1][:200]
            return Judgement(FAILED, f"health check failing{': ' + last if last else ''}")
        if health == "starting":
            return Judgement(PENDING, "starting (health check not passed yet)")
        again = f", restarted {restarts} times" if restarts else ""
        return Judgement(READY, ("healthy" if health == "healthy" else "running") + again)
    if status == "exited" and code == 0 and policy not in ("always", "unless-stopped"):
        return Judgement(READY, "completed")
    if status in ("exited", "restarting") and policy in _RESTARTING_POLICIES:
        return Judgement(PENDING, f"restarting (exit code {code}, {restarts} restarts so far)")
    if status in ("exited", "dead"):
        return Judgement(FAILED, f"exited with code {code}")
    return Judgement(PENDING, status or "unknown")


def judge(containers: Iterable[dict[str, Any]], restarts_allowed: int) -> dict[str, Judgement]:
    """Service -> the worst judgement among its containers (one-off `compose run` ones ignored)."""
    out: dict[str, Judgement] = {}
    for attrs in containers:
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        if labels.get("com.docker.compose.oneoff") == "True":
            continue
        service = labels.get("com.docker.compose.service") or str(attrs.get("Name", "?")).lstrip("/")
        verdict = container(attrs, restarts_allowed)
        if service not in out or _RANK[verdict.verdict] > _RANK[out[service].verdict]:
            out[service] = verdict
    return out


def summary(services: dict[str, Judgement], verdict: str) -> str:
    return "; ".join(f"{name}: {j.text}" for name, j in sorted(services.items()) if j.verdict == verdict)


Observer = Callable[[dict[str, str]], None]


def wait(poll: Callable[[], list[dict[str, Any]]], timeout: float, observe: Observer,
         restarts_allowed: int = 3, interval: float = 0.5) -> tuple[bool, str]:
    """Poll until every service is ready (True), one fails, or the timeout passes (False, why).
    `observe` gets service -> state text on every round."""
    deadline = time.monotonic() + timeout
    while True:
        services = judge(poll(), restarts_allowed)
        observe({name: j.text for name, j in services.items()})
        failed = summary(services, FAILED)
        if failed:
            return False, failed
        pending = summary(services, PENDING)
        if not pending:
            return True, "healthy"
        if time.monotonic() >= deadline:
            return False, f"not healthy within {timeout:.0f}s: {pending}"
        time.sleep(interval)


def watch(poll: Callable[[], list[dict[str, Any]]], policy: HealthPolicy, seconds: float, observe: Observer,
          sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str]:
    """After a healthy start, keep judging for `seconds`: the first check after the policy's
    initial delay, then one every period. A check fails when a service is not ready, a container
    restarted since the last check, or the engine took longer than the policy's timeout to
    answer; `failure_threshold` failing checks in a row end the watch (False, why), an OOM kill
    at once. (True, "") when the window passes."""
    end = time.monotonic() + seconds
    sleep(min(policy.initial_delay, seconds))
    restarts: dict[str, int] = {}
    in_row = 0
    while time.monotonic() < end:
        began = time.monotonic()
        containers = poll()
        took = time.monotonic() - began
        services = judge(containers, restarts_allowed=0)
        observe({name: j.text for name, j in services.items()})
        problems = [f"{name}: {j.text}" for name, j in sorted(services.items()) if j.verdict != READY]
        for attrs in containers:
            count, before = int(attrs.get("RestartCount") or 0), restarts.get(str(attrs.get("Id")))
            if before is not None and count > before:
                problems.append(f"{str(attrs.get('Name', '?')).lstrip('/')}: restarted")
            restarts[str(attrs.get("Id"))] = count
        if took > policy.timeout:
            problems.append(f"the engine took {took:.0f}s to answer")
        if any("out of memory" in p for p in problems):
            return False, "; ".join(problems)
        in_row = in_row + 1 if problems else 0
        if in_row >= policy.failure_threshold:
            return False, f"{in_row} checks in a row failed during the watch: {'; '.join(problems)}"
        sleep(max(0.0, min(policy.period, end - time.monotonic())))
    return True, ""
