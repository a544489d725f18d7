"""The command line as a whole: global options anywhere, one duration syntax, errors as
JSON for scripts, shell completion, the environment listed in --help."""

from __future__ import annotations

import json


def test_global_options_work_after_the_subcommand(cli, tmp_path):
    res = cli("status", "--json", "--root", tmp_path / "r", "-q")
    assert res.code == 0 and res.json()["root"] == str(tmp_path / "r")
    res = cli("status", f"--root={tmp_path / 'r2'}", "--json")
    assert res.code == 0 and res.json()["root"] == str(tmp_path / "r2")


def test_durations_take_units_or_seconds(cli, tmp_path):
    for value in ("90s", "5m", "2h", "30"):
        res = cli("--root", tmp_path / "r", "rollback", "--timeout", value, "--wait", value)
        assert res.code == 2 and "no application is installed" in res.err, (value, res.err)
    res = cli("--root", tmp_path / "r", "rollback", "--timeout", "soon")
    assert res.code == 2 and "'soon' is not a duration" in res.err


def test_json_commands_print_errors_as_json(cli, tmp_path):
    res = cli("--root", tmp_path / "r", "rollback", "--json")
    assert res.code == 2 and json.loads(res.out) == {"error": "no application is installed on this host", "exit": 2}


def test_completion_and_environment_in_help(cli):
    for shell in ("bash", "zsh", "fish"):
        res = cli("completion", shell)
        assert res.code == 0 and "_SATCHEL_COMPLETE" in res.out
    help_text = cli("--help").out
    assert all(name in help_text for name in ("SATCHEL_ROOT", "SATCHEL_APP", "SATCHEL_REGISTRY_PORT",
                                              "SATCHEL_COMPOSE", "SATCHEL_HELM", "SATCHEL_KIT_CACHE"))
