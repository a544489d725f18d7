"""The environment is checked after the signature and before any change: the Docker engine
answers, Compose runs, and the Compose project is this root's own. Real engine, real Compose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hosts import make_bundle
from tests.infra import docker

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("env-bundles")
    return {v: make_bundle(base / v, v, keys) for v in ("1.0.0", "1.1.0", "1.2.0")}


@pytest.mark.parametrize("command", ["install", "rollback", "config apply"])
def test_docker_unreachable_is_exit_4_before_any_change(host, bundles, command):
    assert host.install(bundles["1.0.0"]).returncode == 0
    assert host.install(bundles["1.1.0"]).returncode == 0
    before = host.snapshot()
    if command == "install":
        res = host.install(bundles["1.2.0"], env=NO_DOCKER)
    else:
        res = host.run(*command.split(), "--timeout", "20", env=NO_DOCKER)
    errors = [line for line in res.stderr.splitlines() if line.startswith("satchel: error:")]
    assert res.returncode == 4 and len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "the Docker engine is not reachable" in errors[0]
    assert host.snapshot() == before                        # every file under the root, and the containers
    assert host.state.current() == "1.1.0" and host.served_version() == "hello 1.1.0"


def test_a_compose_project_this_root_did_not_create_is_refused(host, bundles, engine_image):
    foreign = docker("run", "-d", "--label", f"com.docker.compose.project={host.project}",
                     "--label", "com.docker.compose.project.config_files=/srv/other/compose.yaml",
                     "--label", "com.docker.compose.service=db", engine_image).strip()
    started = json.loads(docker("inspect", foreign))[0]["State"]["StartedAt"]
    res = host.install(bundles["1.0.0"])
    assert res.returncode == 4, res.stderr
    assert f"Compose project '{host.project}' has containers this Satchel root did not create" in res.stderr
    assert "--project NAME" in res.stderr
    state = json.loads(docker("inspect", foreign))[0]["State"]
    assert state["Running"] and state["StartedAt"] == started     # untouched
    assert host.state.current() is None and not (host.root / "store").exists()
    res = host.install(bundles["1.0.0"], "--project", host.project + "-own")
    assert res.returncode == 0, res.stderr
    own = f"{host.project}-own"
    docker("rm", "-f", *docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={own}").split())
    docker("network", "rm", f"{own}_default")
