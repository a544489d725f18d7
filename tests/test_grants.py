"""What compose files grant over the host (bundler/grants.py) and the site policy's judgement
of it (installer/policy.py): pure."""

from __future__ import annotations

import pytest

from bundler.errors import SpecError
from bundler.grants import Grant, grants_of
from installer.policy import SitePolicy

SERVICES = {
    "web": {"image": "w", "volumes": ["data:/data", "./conf:/etc/conf", "/srv/data/web:/var/www",
                                      {"type": "bind", "source": "/", "target": "/host"}]},
    "agent": {"privileged": True, "pid": "host", "network_mode": "host", "cap_add": ["net_admin", "CAP_SYS_TIME"],
              "devices": ["/dev/fuse:/dev/fuse"], "security_opt": ["seccomp:unconfined", "no-new-privileges:true"]},
    "plain": {"image": "p", "volumes": [{"type": "volume", "source": "data", "target": "/d"}]},
}


def test_every_kind_of_grant_is_found_and_nothing_else():
    assert grants_of(SERVICES) == tuple(sorted([
        Grant("web", "host-path", "./conf"), Grant("web", "host-path", "/srv/data/web"),
        Grant("web", "host-path", "/"), Grant("agent", "privileged", ""),
        Grant("agent", "host-namespace", "pid"), Grant("agent", "host-namespace", "network"),
        Grant("agent", "capability", "NET_ADMIN"), Grant("agent", "capability", "SYS_TIME"),
        Grant("agent", "device", "/dev/fuse"), Grant("agent", "unconfined", "seccomp:unconfined")]))


def test_the_policy_refuses_what_it_forbids_and_allows_listed_paths():
    policy = SitePolicy.make(["host-path", "privileged"], ["/srv/data"])
    judged = {g.line(): policy.allows(g) for g in grants_of(SERVICES)}
    assert judged["web: host-path /srv/data/web"] and not judged["web: host-path /"]
    assert not judged["web: host-path ./conf"] and not judged["agent: privileged"]
    assert judged["agent: capability NET_ADMIN"]                 # not forbidden
    assert not SitePolicy.make(["host-path"], ["/srv/data"]).allows(Grant("w", "host-path", "/srv/database"))
    assert SitePolicy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize("forbid, paths, message", [
    (["root"], [], "unknown grant kind root"),
    (["host-path"], ["srv"], "must be absolute"),
])
def test_a_malformed_policy_is_refused(forbid, paths, message):
    with pytest.raises(SpecError, match=message):
        SitePolicy.make(forbid, paths)
