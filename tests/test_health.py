"""Satchel's own judgement of a started release, from the engine's inspect data (no Docker here:
the real engine's answers are exercised by the end-to-end install tests)."""

from __future__ import annotations

import pytest

from bundler.lifecycle import HealthPolicy
from installer import health
from installer.health import FAILED, PENDING, READY


def attrs(service: str = "web", status: str = "running", health_status: str = "", code: int = 0,
          restarts: int = 0, oom: bool = False, policy: str = "no", probe: str = "",
          oneoff: bool = False) -> dict:
    state: dict = {"Status": status, "ExitCode": code, "OOMKilled": oom}
    if health_status:
        state["Health"] = {"Status": health_status, "Log": [{"Output": probe}]}
    labels = {"com.docker.compose.service": service, "com.docker.compose.oneoff": "True" if oneoff else "False"}
    return {"State": state, "RestartCount": restarts, "HostConfig": {"RestartPolicy": {"Name": policy}},
            "Config": {"Labels": labels}, "Name": f"/p-{service}-1"}


@pytest.mark.parametrize(("kwargs", "verdict", "text"), [
    ({}, READY, "running"),
    ({"health_status": "healthy"}, READY, "healthy"),
    ({"health_status": "starting"}, PENDING, "starting (health check not passed yet)"),
    ({"health_status": "unhealthy", "probe": "curl: (7) refused\n"}, FAILED, "health check failing: curl: (7) refused"),
    ({"status": "exited", "code": 0}, READY, "completed"),
    ({"status": "exited", "code": 0, "policy": "on-failure"}, READY, "completed"),
    ({"status": "exited", "code": 0, "policy": "always"}, PENDING, "restarting (exit code 0, 0 restarts so far)"),
    ({"status": "exited", "code": 3}, FAILED, "exited with code 3"),
    ({"status": "restarting", "code": 1, "restarts": 1, "policy": "always"}, PENDING,
     "restarting (exit code 1, 1 restarts so far)"),
    ({"status": "restarting", "code": 1, "restarts": 3, "policy": "always"}, FAILED,
     "crash loop: restarted 3 times (last exit code 1)"),
    ({"status": "exited", "code": 137, "oom": True, "policy": "always"}, FAILED, "killed: out of memory"),
    ({"status": "created"}, PENDING, "created"),
    ({"status": "dead", "code": 1}, FAILED, "exited with code 1"),
])
def test_one_container_judged(kwargs, verdict, text):
    assert health.container(attrs(**kwargs), restarts_allowed=3) == health.Judgement(verdict, text)


def test_a_service_is_as_bad_as_its_worst_container_and_one_off_runs_do_not_count():
    judged = health.judge([attrs("web"), attrs("web", status="exited", code=2), attrs("db", health_status="starting"),
                           attrs("db", status="exited", code=9, oneoff=True)], restarts_allowed=3)
    assert judged == {"web": health.Judgement(FAILED, "exited with code 2"),
                      "db": health.Judgement(PENDING, "starting (health check not passed yet)")}


def test_wait_reports_every_round_and_stops_at_the_first_failure():
    rounds = iter([[attrs("db", health_status="starting"), attrs("web", status="created")],
                   [attrs("db", health_status="healthy"), attrs("web", status="exited", code=1)]])
    seen: list[dict[str, str]] = []
    ok, detail = health.wait(lambda: next(rounds), timeout=60, observe=seen.append, interval=0)
    assert (ok, detail) == (False, "web: exited with code 1")
    assert seen == [{"db": "starting (health check not passed yet)", "web": "created"},
                    {"db": "healthy", "web": "exited with code 1"}]


def test_wait_ends_healthy_or_at_the_timeout_naming_what_it_waited_on():
    assert health.wait(lambda: [attrs("web", health_status="healthy")], 60, lambda s: None, interval=0) == \
        (True, "healthy")
    assert health.wait(lambda: [attrs("web", health_status="starting")], 0, lambda s: None, interval=0) == \
        (False, "not healthy within 0s: web: starting (health check not passed yet)")


class Clock:
    """Fake time for the watch: sleeping advances it; every poll takes `poll_takes` seconds."""

    def __init__(self, poll_takes: float = 0.0) -> None:
        self.now, self.poll_takes, self.slept = 1000.0, poll_takes, []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def polled(self, rounds):
        def poll():
            self.now += self.poll_takes
            return next(rounds)
        return poll


def watch(monkeypatch, rounds, policy, seconds, poll_takes=0.0):
    clock = Clock(poll_takes)
    monkeypatch.setattr(health.time, "monotonic", lambda: clock.now)
    seen: list[dict[str, str]] = []
    result = health.watch(clock.polled(iter(rounds)), policy, seconds, seen.append, sleep=clock.sleep)
    return result, clock, seen


POLICY = HealthPolicy(initial_delay=10, period=5, timeout=2, failure_threshold=2, watch=60)


def test_a_healthy_release_is_watched_for_the_whole_window(monkeypatch):
    (ok, why), clock, seen = watch(monkeypatch, [[attrs(health_status="healthy")]] * 20, POLICY, 30)
    assert (ok, why) == (True, "") and clock.slept[0] == 10 and len(seen) == 4     # at 10, 15, 20, 25 s


def test_failing_checks_in_a_row_end_the_watch_but_one_failure_does_not(monkeypatch):
    good, bad = [attrs(health_status="healthy")], [attrs(health_status="unhealthy", probe="503")]
    (ok, why), _, _ = watch(monkeypatch, [good, bad, good, bad, good] * 4, POLICY, 60)
    assert ok
    (ok, why), _, seen = watch(monkeypatch, [good, bad, bad, good], POLICY, 60)
    assert not ok and why == "2 checks in a row failed during the watch: web: health check failing: 503"
    assert len(seen) == 3


def test_a_restart_since_the_last_check_counts_and_an_oom_kill_ends_it_at_once(monkeypatch):
    running = [{**attrs(health_status="healthy", restarts=n, policy="always"), "Id": "c1"} for n in (0, 1, 2)]
    (ok, why), _, _ = watch(monkeypatch, [[r] for r in running], POLICY, 60)
    assert not ok and "p-web-1: restarted" in why
    oom = attrs(status="exited", code=137, oom=True, policy="always")
    (ok, why), _, seen = watch(monkeypatch, [[oom]], POLICY, 60)
    assert (ok, why, len(seen)) == (False, "web: killed: out of memory", 1)


def test_an_engine_slower_than_the_timeout_fails_the_check(monkeypatch):
    (ok, why), _, _ = watch(monkeypatch, [[attrs(health_status="healthy")]] * 5, POLICY, 60, poll_takes=3)
    assert not ok and "the engine took 3s to answer" in why
