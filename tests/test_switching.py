"""switch: in satchel.yaml: what a blue-green declaration may say, checked against the compose
services at build (pure; the real-engine behaviour is tests/test_bluegreen_e2e.py)."""

from __future__ import annotations

import pytest

from bundler.errors import SpecError
from bundler.switching import Port, Switch, routed_ports
from installer.targets.bluegreen import split

BG = {"strategy": "blue-green", "routes": {"web": "http"}, "singletons": {"db": "keep", "worker": "stop-first"}}
SERVICES = {"web": {"image": "w", "ports": ["127.0.0.1:8080:80", {"target": 443, "published": 8443}]},
            "db": {"image": "d", "ports": ["5432:5432"], "volumes": ["db:/var/lib/db"]},
            "worker": {"image": "w", "depends_on": ["db"]}}


def test_routed_ports_are_read_from_both_port_syntaxes():
    assert routed_ports(Switch.from_json(BG), SERVICES) == [Port("web", "http", "127.0.0.1", 8080, 80),
                                                             Port("web", "http", "", 8443, 443)]
    assert Switch.from_json("blue-green") == Switch("blue-green")
    assert Switch.from_json({"strategy": "blue-green", "drain": "1m"}).drain == 60


@pytest.mark.parametrize("switch, services, message", [
    ({"strategy": "blue-green"}, SERVICES, "service db publishes ports, and both colours cannot hold them"),
    (BG, {**SERVICES, "web": {"ports": ["8080:80/udp"]}}, "only TCP ports with a fixed host port"),
    (BG, {**SERVICES, "web": {"ports": ["80"]}}, "found a random port:80/tcp"),
    (BG, {**SERVICES, "web": {"ports": ["8000-8010:80"]}}, "ranges and variables cannot be routed"),
    (BG, {**SERVICES, "web": {}}, "service web publishes no port to route"),
    (BG, {"web": SERVICES["web"]}, "service db is not in the compose files"),
    ({**BG, "routes": {"web": "http", "api": "tcp"}},
     {**SERVICES, "api": {"ports": ["8080:81"]}}, "two routed services publish the same host port"),
])
def test_a_declaration_the_compose_files_cannot_honour_is_refused(switch, services, message):
    with pytest.raises(SpecError, match=message):
        routed_ports(Switch.from_json(switch), services)


@pytest.mark.parametrize("doc, message", [
    ({"strategy": "rolling"}, "choose recreate or blue-green"),
    ({"routes": {"web": "http"}}, "routes and singletons go with strategy: blue-green"),
    ({**BG, "routes": {"db": "tcp"}}, "db is routed and a singleton"),
    ({**BG, "singletons": {"db": "twice"}}, "choose keep or stop-first"),
    ({**BG, "drain": "soon"}, "not a duration"),
    ({**BG, "colours": 3}, "unknown field"),
])
def test_a_malformed_declaration_is_refused(doc, message):
    with pytest.raises(SpecError, match=message):
        Switch.from_json(doc)


def test_a_colour_runs_all_but_the_keep_singletons_and_publishes_no_routed_port():
    doc = {"services": SERVICES, "volumes": {"db": None, "cache": {"name": "vendor-cache"}}}
    colour, keep = split(doc, Switch.from_json(BG), "acme")
    assert set(colour["services"]) == {"web", "worker"} and set(keep["services"]) == {"db"}
    assert "ports" not in colour["services"]["web"]
    assert "depends_on" not in colour["services"]["worker"]          # db is not in the colour's project
    assert keep["services"]["db"]["ports"] == ["5432:5432"]         # a singleton publishes its own
    # Both sides name the volumes as a recreate release would: the data carries over.
    assert colour["volumes"] == keep["volumes"] == {"db": {"name": "acme_db"}, "cache": {"name": "vendor-cache"}}
