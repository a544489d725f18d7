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


def test_every_command_loads_by_its_name_and_verify_does_not_load_the_customer_side():
    """The command table names each command's module; `satchel verify` imports the vendor
    side's commands only (and no rich), which is what keeps its start-up short."""
    import subprocess
    import sys

    import click

    from installer.cli import COMMANDS
    from installer.cli import cli as group

    ctx = click.Context(group)
    for name in COMMANDS:
        command = group.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name, name
    probe = ("import sys; from installer.cli import main; main(['verify', '--help']); "
             "print(sorted(m for m in sys.modules if m.startswith(('installer.commands', 'installer.intake', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
