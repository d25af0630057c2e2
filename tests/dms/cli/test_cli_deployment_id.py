"""A deployment id on the command line is checked before anything is sent: a malformed
one is a usage mistake (exit 2, one line naming it and what an id looks like), a
well-formed one in upper case is taken as the node writes it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dms.cli import main
from dms.cli._deployment_id import EXAMPLE_ID, check_deployment_id
from dms.node._command import Mistake

from .conftest import environment

ID = "8ba33da2-cb14-488c-a29f-887eb065b1cc"


@pytest.mark.parametrize("argv", [
    ["status", "not-an-id"], ["shutdown", "not-an-id"], ["events", "not-an-id"],
    ["logs", "not-an-id", "web"], ["join", "not-an-id"], ["leave", "not-an-id"],
])
def test_a_malformed_id_is_a_one_line_usage_mistake_naming_it(argv: list[str],
                                                               tmp_path: Path) -> None:
    result = CliRunner().invoke(main, argv, env=environment(tmp_path), catch_exceptions=False)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: ID 'not-an-id' is not a deployment id: an id is a UUID like {EXAMPLE_ID}, "
        "as `dms deploy` and `dms list` print it"]


@pytest.mark.parametrize("text", [
    "", ID[:-1], ID + "0", ID.replace("-", ""), "{" + ID + "}", f"urn:uuid:{ID}",
    ID[:8] + "\n" + ID[9:], "x" * 10_000,
    # int() reads these as hex digits, so uuid.UUID takes them: the round trip refuses
    ID.replace("8", "\u0668"), ID.replace("1", "\uff11"), ID[:-1] + "_", " " + ID, ID + "\n",
    ID.replace("b", "\u212a"),  # a Kelvin sign lowers to "k": still not hex
])
def test_other_forms_of_a_uuid_and_junk_are_refused(text: str) -> None:
    param = click.Argument(["deployment"], metavar="ID")
    with pytest.raises(Mistake) as refused:
        check_deployment_id(click.Context(main), param, text)
    message = refused.value.message
    assert message.startswith("ID ") and "is not a deployment id" in message
    assert len(message) < 300 and "\n" not in message  # the id is shown escaped and cut


def test_an_id_in_upper_case_is_taken_in_the_nodes_lower_case() -> None:
    param = click.Argument(["deployment"], metavar="ID")
    assert check_deployment_id(click.Context(main), param, ID.upper()) == ID
    assert check_deployment_id(click.Context(main), param, ID) == ID
    assert check_deployment_id(click.Context(main), param, None) is None  # `dms status`


@pytest.mark.parametrize(("argv", "said"), [
    (["join", ID, "--nod", "tcp://127.0.0.1:1"], "no such option: --nod"),
    (["join", ID, "--jsn"], "no such option: --jsn"),
    (["join", ID, "--json", "--", "true"], "--json: prints what joining gave, without CMD"),
])
def test_a_mistyped_join_option_is_a_usage_mistake_not_a_command_run_inside(
        argv: list[str], said: str, tmp_path: Path) -> None:
    """`dms join` passes unknown options through to CMD: before this, `--nod` was
    joined and then run as a command in the namespace."""
    result = CliRunner().invoke(main, argv, env=environment(tmp_path), catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {said}")
