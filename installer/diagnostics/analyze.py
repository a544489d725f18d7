"""Findings from collected facts. Pure: facts in, findings out; every rule has a test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from signing.grammar import parse_time

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def analyze(facts: dict[str, Any], errors: list[dict[str, str]]) -> list[Finding]:
    """Every rule, in the order the report shows them."""
    failed = {e["collector"]: e["error"] for e in errors}
    return [finding for rule in RULES for finding in rule(facts, failed)]


def _release(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    state = facts.get("satchel") or {}
    current = state.get("current")
    if "satchel" in failed or state.get("state_errors"):
        out = [Finding("state", FAIL, "; ".join(state.get("state_errors") or [failed.get("satchel", "")]))]
    elif not current:
        out = [Finding("release", WARN, "no release is installed")]
    else:
        out = [Finding("release", PASS, f"release {current} is current")]
    if state.get("journal"):
        job = state["journal"]
        out.append(Finding("interrupted", WARN, f"an interrupted {job.get('op')} of {job.get('to')} is pending; "
                                                "the next satchel command finishes it"))
    return out


def _last_deployment(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    history = (facts.get("satchel") or {}).get("history") or []
    events = [e for e in history if e.get("event") in ("installed", "failed", "rolled-back")]
    if not events:
        return []
    if events[-1]["event"] == "installed":
        return [Finding("last-install", PASS, f"the last deployment ({events[-1].get('version')}) succeeded")]
    last_fail = next((e for e in reversed(events) if e["event"] == "failed"), None)
    reason = f"{last_fail.get('version')}: {last_fail.get('reason')}" if last_fail else ""
    return [Finding("last-install", FAIL if events[-1]["event"] == "failed" else WARN,
                    f"the last deployment did not succeed ({events[-1]['event']} {events[-1].get('version')}"
                    + (f"; {reason}" if reason else "") + ")")]


def _containers(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    current = (facts.get("satchel") or {}).get("current")
    out = []
    if "docker" in failed:
        out.append(Finding("docker", FAIL, f"the Docker engine could not be queried: {failed['docker']}"))
    if current and not {"docker", "workload"} & set(failed) and not facts.get("containers"):
        out.append(Finding("containers", FAIL, f"no container of release {current} exists; "
                                               f"`satchel rollback --to {current}` starts them again"))
    for c in facts.get("containers") or []:
        name = c["name"]
        if c.get("status") != "running":
            out.append(Finding(f"container:{name}", FAIL,
                               f"{name} is {c.get('status')} (exit code {c.get('exit_code')})"))
        elif c.get("health") == "unhealthy":
            out.append(Finding(f"container:{name}", FAIL, f"{name} is unhealthy"))
        elif c.get("status") == "restarting" or (c.get("restart_count") or 0) > 0:
            out.append(Finding(f"container:{name}", WARN, f"{name} restarted {c.get('restart_count')} time(s)"))
        else:
            out.append(Finding(f"container:{name}", PASS, f"{name} is running" + (
                f" and {c['health']}" if c.get("health") else "")))
    return out


def _registry(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    registry = facts.get("registry")
    if "registry" in failed:
        return [Finding("registry", FAIL, f"the registry could not be checked: {failed['registry']}")]
    if not registry:
        return []
    if not registry.get("reachable"):
        return [Finding("registry", FAIL, f"the registry {registry.get('host')} is not reachable")]
    if registry.get("missing"):
        return [Finding("registry", FAIL, f"{len(registry['missing'])} blob(s) the current release needs are "
                                          f"missing from {registry.get('host')}")]
    return [Finding("registry", PASS, f"every image of the current release is in {registry.get('host')}")]


def _store(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    store = facts.get("store")
    if store and (store.get("missing") or store.get("corrupt")):
        return [Finding("store", FAIL, f"{len(store['missing'])} missing and {len(store['corrupt'])} corrupt "
                                       "blob(s) in the content store")]
    return [Finding("store", PASS, f"{store.get('ok')} stored blob(s) verified")] if store else []


def _host(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    out = []
    for name, disk in ((facts.get("host") or {}).get("disks") or {}).items():
        free = disk["free"] / disk["total"] if disk.get("total") else 1
        status = FAIL if free < 0.02 else WARN if free < 0.10 or disk["free"] < 1 << 30 else PASS
        out.append(Finding(f"disk:{name}", status, f"{name.replace('_', ' ')}: {disk['free'] >> 20} MiB free "
                                                   f"of {disk['total'] >> 20} MiB ({free:.0%})"))
    state = facts.get("satchel") or {}
    created = (state.get("releases") or {}).get(state.get("current") or "", {}).get("created")
    clock = (facts.get("host") or {}).get("clock_utc")
    if created and clock and parse_time(clock) < parse_time(created):
        out.append(Finding("clock", FAIL, f"the host clock ({clock}) is earlier than the release's creation "
                                          f"({created}); expiry checks and logs will be wrong"))
    return out


def _collectors(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    # docker, registry and satchel have findings of their own; the workload of a Compose
    # release fails with the engine, and saying so once is enough.
    return [Finding(f"collector:{name}", WARN, f"could not collect: {error}") for name, error in failed.items()
            if name not in ("docker", "registry", "satchel") and not (name == "workload" and "docker" in failed)]


def _drift(facts: dict[str, Any], failed: dict[str, str]) -> list[Finding]:
    """Containers changed by hand since the release was applied: what support sees first."""
    current = (facts.get("satchel") or {}).get("current")
    if not current or "workload" in failed or "drift" not in facts:
        return []
    drift = facts["drift"]
    if not drift:
        return [Finding("drift", PASS, f"every container runs as release {current} says")]
    return [Finding("drift", FAIL, f"{d['service']} {d['container']}: {d['kind']}: {d['detail']}; "
                                   f"`satchel rollback --to {current}` applies the release again") for d in drift]


RULES: list[Callable[[dict[str, Any], dict[str, str]], list[Finding]]] = [
    _release, _last_deployment, _containers, _drift, _registry, _store, _host, _collectors]
