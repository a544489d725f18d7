"""Site configuration and secrets end to end, with real Docker Compose: layers, validation
before any change, a configuration change as a release (rolled back on a failed health
check with the old values), and a planted secret that appears nowhere it should not."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.hosts import Host, make_bundle
from tests.infra import docker

SECRET = "planted-config-secret-8642"
SETTINGS = """settings:
  - {name: GREETING, default: hello, description: what the page says}
  - {name: MODE, default: normal}
  - {name: PORT, type: port, default: 8080}
  - {name: DB_PASSWORD, secret: true, required: true, description: database password}
  - {name: LICENSE, required: true, description: the licence key from the vendor}
"""
ENV = ("    environment:\n      GREETING: ${GREETING}\n      MODE: ${MODE}\n      LICENSE: ${LICENSE}\n"
       "      DB_PASSWORD: ${DB_PASSWORD}\n")
COMMAND = ('["/bin/busybox", "sh", "-c", "echo greeting $$GREETING password $$DB_PASSWORD; '
           'exec /bin/busybox httpd -f -p ${PORT} -h /www"]')
HEALTH = '["CMD", "/bin/busybox", "sh", "-c", "test \\"$$MODE\\" != broken"]'


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("config-bundles")
    return {v: make_bundle(base / v, v, keys, healthcheck=HEALTH, web_extra=ENV, web_command=COMMAND,
                           spec_extra=SETTINGS) for v in ("1.0.0", "1.1.0", "1.2.0")}


class Recorder:
    """Every command's output, and every docker compose argument list, for the secret search."""

    def __init__(self, host: Host, tmp: Path) -> None:
        self.host, self.outputs = host, []
        self.argv_log = tmp / "compose-argv.log"
        wrapper = tmp / "compose-wrapper.sh"
        from installer.tools.compose import binary

        # In the kit's bare container, Compose is the one the kit carries (in its cache).
        compose = " ".join(binary()) if host.box is None else "/var/cache/satchel/kit-*/tools/docker-compose"
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {self.argv_log}\nexec {compose} "$@"\n')
        wrapper.chmod(0o755)
        host.env["SATCHEL_COMPOSE"] = str(wrapper)

    def __call__(self, *args, **kwargs) -> subprocess.CompletedProcess[str]:
        res = self.host.run(*args, **kwargs)
        self.outputs.append(res.stdout + res.stderr)
        return res


def env_of(host: Host) -> dict[str, str]:
    return dict(e.split("=", 1) for e in host.containers()["web"]["Config"]["Env"])


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_layers_survive_upgrades_overrides_last_one_install(host, bundles, tmp_path):
    run = Recorder(host, tmp_path)
    # Before the first install, the application is named; after it, it is the host's only one.
    assert run("config", "set-secret", "DB_PASSWORD", "--app", "hello", input=SECRET + "\n").returncode == 0
    assert run("config", "set", "LICENSE=L-1", "--app", "hello").returncode == 0
    res = host.install(bundles["1.0.0"])
    assert res.returncode == 0, res.stderr
    env = env_of(host)
    assert (env["GREETING"], env["MODE"], env["LICENSE"], env["DB_PASSWORD"]) == ("hello", "normal", "L-1", SECRET)
    assert run("config", "set", "GREETING=hi").returncode == 0
    assert host.install(bundles["1.1.0"]).returncode == 0
    assert env_of(host)["GREETING"] == "hi"                      # site value kept across the upgrade
    res = host.install(bundles["1.2.0"], "--set", "GREETING=just-this-once")
    assert res.returncode == 0, res.stderr
    assert env_of(host)["GREETING"] == "just-this-once"
    res = run("config", "apply")
    assert res.returncode == 0, res.stderr
    assert env_of(host)["GREETING"] == "hi" and host.state.current() == "1.2.0+config.1"
    shown = {r["name"]: r for r in json.loads(run("config", "show", "--json").stdout)}
    assert shown["GREETING"]["value"] == "hi" and shown["GREETING"]["layer"] == "site configuration"
    assert shown["MODE"]["layer"] == "vendor default"
    assert shown["DB_PASSWORD"]["value"] == "set" and shown["DB_PASSWORD"]["layer"] == "secret store"


@pytest.mark.parametrize("setup,message", [
    ([], "required setting DB_PASSWORD has no value"),
    ([("config", "set-secret", "DB_PASSWORD", "--app", "hello")],
     "required setting LICENSE has no value in any layer (the licence key"),
    ([("config", "set-secret", "DB_PASSWORD", "--app", "hello"), ("config", "set", "LICENSE=x", "PORT=http", "--app",
                                                                    "hello")],
     "setting PORT from the site configuration is 'http', but must be a port number"),
    ([("config", "set-secret", "DB_PASSWORD", "--app", "hello"), ("config", "set", "LICENSE=x", "BOGUS=1", "--app",
                                                                    "hello")],
     "setting BOGUS from the site configuration is not declared by this bundle"),
])
def test_bad_configuration_is_refused_before_any_change(host, bundles, setup, message):
    for cmd in setup:
        assert host.run(*cmd, input="s3cr3t-value\n").returncode == 0
    before = host.snapshot()
    res = host.install(bundles["1.0.0"])
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len([line for line in res.stderr.splitlines() if line.startswith("satchel: error:")]) == 1
    assert host.snapshot() == before and host.state.current() is None


def test_secret_on_the_command_line_is_refused(host, bundles):
    host.run("config", "set", "LICENSE=x", "--app", "hello")
    res = host.install(bundles["1.0.0"], "--set", f"DB_PASSWORD={SECRET}")
    assert res.returncode == 2 and "set-secret DB_PASSWORD" in res.stderr and SECRET not in res.stderr
    assert host.run("config", "set", f"DB_PASSWORD={SECRET}", "--app", "hello").returncode == 2


@pytest.mark.parametrize("host", ["venv", "kit"], indirect=True)
def test_broken_config_change_is_rolled_back_with_the_old_values(host, bundles, tmp_path):
    run = Recorder(host, tmp_path)
    run("config", "set-secret", "DB_PASSWORD", "--app", "hello", input=SECRET)
    run("config", "set", "LICENSE=L-1", "--app", "hello")
    assert host.install(bundles["1.0.0"]).returncode == 0
    run("config", "set", "MODE=broken", "GREETING=new")
    res = run("config", "apply", "--timeout", "15")
    assert res.returncode == 5, res.stderr
    assert host.state.current() == "1.0.0"
    env = env_of(host)
    assert env["MODE"] == "normal" and env["GREETING"] == "hello"   # the old values run again
    assert "rollback report" in res.stderr and "MODE: normal -> broken" in res.stderr
    assert "service web" in res.stderr and "password ***HIDDEN***" in res.stderr
    reports = list((host.app_dir / "reports").glob("*.txt"))
    assert len(reports) == 1 and "MODE: normal -> broken" in reports[0].read_text()
    # rollback restores values too: 1.0.0 -> (manual) back to it after a good apply
    run("config", "set", "MODE=normal")
    assert run("config", "apply").returncode == 0 and env_of(host)["GREETING"] == "new"
    assert run("rollback").returncode == 0 and env_of(host)["GREETING"] == "hello"

    # The planted secret: nowhere under the root but its store, in no argv, no output, no archive.
    archive = tmp_path / "diag.tar.zst"
    assert run("diagnostics", "-o", archive).returncode == 0
    from tests.test_diagnostics import unpack

    assert SECRET.encode() not in b"".join(unpack(archive).values())
    assert SECRET.encode() not in archive.read_bytes()
    secrets_dir = host.app_dir / "secrets"
    for path in host.root.rglob("*"):
        if path.is_file() and secrets_dir not in path.parents:
            assert SECRET.encode() not in path.read_bytes(), path
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    # What can hold configuration is not for other users: releases, reports, run logs.
    for private in (host.root / "apps", host.root / "logs"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, private
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in [*reports, *(host.root / "logs").iterdir()])
    for path in secrets_dir.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert SECRET in (secrets_dir / "values.json").read_text()
    assert run.argv_log.exists() and SECRET not in run.argv_log.read_text()
    assert all(SECRET not in out for out in run.outputs)
    assert SECRET not in "".join(os.environ.values())


def test_inspect_shows_the_settings_a_release_needs(bundles, cli):
    res = cli("inspect", bundles["1.0.0"])
    assert "setting     LICENSE (string, required): the licence key from the vendor" in res.out
    assert "setting     DB_PASSWORD (string, secret, required)" in res.out
    assert "setting     PORT (port, default '8080')" in res.out
    settings = {s["name"]: s for s in cli("inspect", bundles["1.0.0"], "--json").json()["settings"]}
    assert settings["LICENSE"]["required"] and settings["DB_PASSWORD"]["secret"]


def test_values_reach_the_container_byte_for_byte_and_never_read_each_other(host, bundles):
    """Dollars, braces, quotes, backslashes and non-ASCII: nothing is expanded or unquoted, and
    a site value naming a secret gets the name, not the secret."""
    secret = "pa$$word $HOME ${LICENSE} 'q' \"dq\" back\\slash ünï"
    greeting = "${DB_PASSWORD} $HOME $(id) `id` 'it''s' \\n"
    assert host.run("config", "set-secret", "DB_PASSWORD", "--app", "hello", input=secret + "\n").returncode == 0
    assert host.run("config", "set", f"GREETING={greeting}", "LICENSE=L-$1", "--app", "hello").returncode == 0
    res = host.install(bundles["1.0.0"])
    assert res.returncode == 0, res.stderr
    env = env_of(host)
    assert (env["DB_PASSWORD"], env["GREETING"], env["LICENSE"]) == (secret, greeting, "L-$1")


def test_concurrent_secret_writes_lose_nothing(tmp_path):
    """Sixteen `config set-secret` at once: each takes the root's lock, all sixteen are kept."""
    import sys

    from tests.launch import RUN

    env = {**os.environ, "SATCHEL_ROOT": str(tmp_path / "root")}
    writers = [subprocess.Popen([sys.executable, "-c", RUN, "config", "set-secret", f"S{n}", "--app", "hello"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
               for n in range(16)]
    for n, w in enumerate(writers):
        _, err = w.communicate(f"value-{n}\n".encode(), timeout=120)
        assert w.returncode == 0, err
    stored = json.loads((tmp_path / "root" / "apps" / "hello" / "secrets" / "values.json").read_text())
    assert stored == {f"S{n}": f"value-{n}" for n in range(16)}


def test_diagnostics_hide_vendor_marked_values_with_no_container_left(host, keys, tmp_path):
    """LICENSE is a plain setting the vendor marks secret (`secrets:`): with the containers gone
    there is no environment to learn it from, yet release.json and the logs hold it."""
    bundle = make_bundle(tmp_path / "b", "1.0.0", keys, healthcheck=HEALTH, web_extra=ENV, web_command=COMMAND,
                         spec_extra=SETTINGS + "secrets: [LICENSE]\n")
    planted = "L-planted-licence-9876"
    host.run("config", "set-secret", "DB_PASSWORD", "--app", "hello", input="pw-1234\n")
    host.run("config", "set", f"LICENSE={planted}", "--app", "hello")
    assert host.install(bundle).returncode == 0
    docker("rm", "-f", *[c["Id"] for c in host.containers().values()])
    archive = tmp_path / "diag.tar.zst"
    assert host.run("diagnostics", "-o", archive).returncode == 0
    from tests.test_diagnostics import unpack

    assert planted.encode() not in b"".join(unpack(archive).values())
