"""`dms` imports a subcommand's module only when that subcommand runs, and says the same
as it did when it imported them all."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from dms.cli import main
from dms.cli._lazy import EXIT_INTERRUPTED, LazyCommand, LazyGroup


def loaded_modules(*argv: str) -> set[str]:
    """The project's modules (and the heavy libraries) a `dms ARGV` run imported."""
    probe = (
        "import sys, dms_console\n"
        f"sys.argv = ['dms', *{list(argv)!r}]\n"
        "try:\n"
        "    dms_console.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('dms', 'ucan', 'trio', 'attr', 'cattrs', 'rich', 'yaml', 'nacl')\n"
        "sys.stderr.write(' '.join(m for m in sys.modules if m.split('.')[0] in heavy "
        "or m.startswith('dms')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    return set(done.stderr.split())


@pytest.mark.parametrize("argv", [("--version",), ("--help",), ("-h",)])
def test_version_and_help_import_no_command_module(argv: tuple[str, ...]) -> None:
    assert loaded_modules(*argv) <= {"dms", "dms._exports", "dms.cli", "dms.cli._lazy",
                                     "dms_console"}


def test_a_command_imports_its_own_module_not_the_others() -> None:
    loaded = loaded_modules("validate", "/nonexistent.yaml")
    assert "dms.ensemble._report" in loaded
    assert not loaded & {"dms.cli._dev", "dms.cli._cap", "dms.cli._deploy", "dms.node",
                         "dms.actor", "trio"}


@pytest.mark.parametrize("width", [50, 80, 200])
def test_the_listing_from_summaries_is_the_one_click_makes_from_the_commands(
        width: int) -> None:
    assert isinstance(main, LazyGroup)
    unloaded = LazyGroup(name="dms", lazy=main.lazy, help=main.help,
                         context_settings=main.context_settings)
    unloaded.add_command(main.commands["validate"])
    loaded = click.Group(name="dms", help=main.help, context_settings=main.context_settings,
                         commands=[main.commands["validate"]])
    for name, lazy in main.lazy.items():
        loaded.add_command(lazy.load(), name)
    shown = CliRunner().invoke(unloaded, ["--help"], terminal_width=width)
    assert shown.exit_code == 0, shown.output
    assert not unloaded.commands.keys() - {"validate"}  # the listing loaded nothing
    assert shown.output == CliRunner().invoke(loaded, ["--help"], terminal_width=width).output


def test_each_lazy_command_is_found_where_it_says_under_its_own_name() -> None:
    assert isinstance(main, LazyGroup)
    for name, lazy in main.lazy.items():
        command = lazy.load()
        assert command.name == name, lazy.location
        assert main.get_command(click.Context(main), name) is command


def test_a_lazy_command_runs_once_loaded() -> None:
    group = LazyGroup(name="g", lazy={
        "fine": LazyCommand(f"{__name__}:_fine", "Say fine.")})
    result = CliRunner().invoke(group, ["fine"])
    assert (result.exit_code, result.output) == (0, "fine\n")
    assert "fine" in group.commands


@click.command("fine")
def _fine() -> None:
    """Say fine."""
    click.echo("fine")


def test_a_location_that_is_not_a_command_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="is not a click command"):
        LazyCommand(f"{__name__}:loaded_modules_of_nothing", "Nothing.").load()


def loaded_modules_of_nothing() -> None:
    return None


def test_ctrl_c_while_a_command_is_imported_is_interrupted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dms.cli._lazy.importlib.import_module", interrupted)
    group = LazyGroup(name="g", lazy={"slow": LazyCommand("anywhere:slow", "Slow.")})
    result = CliRunner().invoke(group, ["slow"])
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stderr == "interrupted\n"
    assert "slow" not in group.commands
