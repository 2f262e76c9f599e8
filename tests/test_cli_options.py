"""Output choices, --version, --results and baseline show, through the CLI runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from senet_profile.cli import app
from senet_profile.history.locations import RESULTS_ENV


def run(*args: str, **env: str):
    return CliRunner(env=env or None).invoke(app, list(args))


def test_output_dash_writes_to_stdout() -> None:
    result = run("profile", "resnet18", "--input-size", "32", "--output", "-", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {r["metric"] for r in json.loads(result.stdout)} >= {"params", "macs"}


def test_md_is_markdown() -> None:
    result = run("profile", "resnet18", "--input-size", "32", "--format", "md")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.lstrip().startswith("### resnet18")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "out.xlsx"], "cannot tell the format of out.xlsx from its suffix"),
        (
            ["--output", "out.csv", "--format", "json"],
            "--format json contradicts the suffix of out.csv (csv)",
        ),
        (["--format", "yaml"], "unknown format 'yaml'"),
    ],
)
def test_output_format_refusals(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / a) if a.startswith("out.") else a for a in args]
    result = run("profile", "resnet18", *args)
    assert result.exit_code == 2
    assert (
        message.replace("out.", str(tmp_path / "out.")) in result.stderr.strip() or message in result.stderr
    )
    assert not list(tmp_path.iterdir())


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("senet-profile ")


@pytest.mark.parametrize(
    "command", [["history"], ["regress"], ["baseline", "update"], ["baseline", "show"], ["plot"]]
)
def test_history_commands_without_results_say_so(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere"
    for result in (run(*command, "--results", str(missing)), run(*command, **{RESULTS_ENV: str(missing)})):
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert result.stderr.strip() == (
            f"error: no results folder at {missing}: run `senet-profile record` or `senet-profile bench` "
            f"first, or point --results (or ${RESULTS_ENV}) at one"
        )


def test_baseline_show_without_a_baseline(tmp_path: Path) -> None:
    result = run("baseline", "show", "--results", str(tmp_path))
    assert result.exit_code == 2
    assert "no baseline of any machine class" in result.stderr


def test_help_shows_brackets_literally() -> None:
    result = run("regress", "--help")
    assert "METRIC:AMOUNT[pp|%]" in result.stdout


@pytest.mark.parametrize("command", [["paper"], ["history"], ["baseline", "show"]])
def test_help_mentions_no_output_option_the_command_lacks(command: list[str]) -> None:
    assert not re.search(r"--output\b(?!-)", run(*command, "--help").stdout)


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every command of the app, subcommands of a group (``baseline show``) included, with its path."""
    found = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer vendors click: no isinstance against click's)
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


COMMANDS = _commands(typer.main.get_command(app))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_help_mentions_only_options_the_command_has(path: tuple[str, ...], command) -> None:
    """Every ``--option`` named in a command's help (its text and its options' texts) is one it takes."""
    has = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
    text = run(*path, "--help").stdout
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))
    assert mentioned <= has, sorted(mentioned - has)


def test_format_help_says_what_choose_format_does() -> None:
    text = " ".join(run("profile", "--help").stdout.split())
    assert ".txt takes any format" in text and "unknown suffix needs --format" in text
    assert "default table" in " ".join(run("sweep", "--help").stdout.split())


@pytest.mark.parametrize(
    ("args", "idle"),
    [
        (["--threads", "2", "--processes", "2", "--allocator", "as-is", "--budget", "3"],
         ["--budget", "--threads", "--allocator", "--processes"]),
        (["--by-op", "--metrics", "latency", "--dtype", "bf16", "--mode", "train", "--crosscheck",
          "--threads", "2"], ["--crosscheck", "--metrics", "--mode", "--dtype", "--threads"]),
    ],
)  # fmt: skip
def test_options_that_do_nothing_warn(args: list[str], idle: list[str]) -> None:
    result = run("profile", "resnet18", "--input-size", "32", "--format", "csv", *args)
    assert result.exit_code == 0, result.stderr
    warned = re.findall(r"^warning: (--[a-z-]+) does nothing here; ignored$", result.stderr, flags=re.M)
    assert sorted(warned) == sorted(idle)


def test_the_commands_defaults_are_the_settings() -> None:
    """The CLI keeps no defaults of its own: --processes unset means the device's default, as Setting's."""
    import inspect

    from senet_profile.cli import explain, measure
    from senet_profile.setting import DEFAULT_REPEATS, Setting

    for command in (measure.profile_command, measure.compare_command):
        parameters = inspect.signature(command).parameters
        assert parameters["processes"].default is None and Setting().processes is None
        assert parameters["budget"].default is None
    assert inspect.signature(explain.explain_command).parameters["repeats"].default == DEFAULT_REPEATS
