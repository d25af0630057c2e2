"""Commands: well-formedness (lowercase in every script, no whitespace) and the
segment-prefix rule."""

from __future__ import annotations

import pytest

from ucan import MalformedToken, SigningKey, check_command, delegate, invoke, proves
from ucan.delegation import Delegation


@pytest.mark.parametrize("command", [
    "/dms/Ärger",      # Latin with diaeresis
    "/ΣΥΣ",            # Greek
    "/dms/Привет",     # Cyrillic
    "/dms/deploy/İ",   # Turkish dotted capital I
    "/dms/Deploy",     # and ASCII, as before
])
def test_a_command_with_upper_case_in_any_script_is_refused(command: str) -> None:
    with pytest.raises(MalformedToken, match="must be lowercase"):
        check_command(command)


@pytest.mark.parametrize("command", ["/dms/ärger", "/σύς", "/dms/привет", "/crud/read", "/"])
def test_lowercase_commands_in_any_script_are_accepted(command: str) -> None:
    assert check_command(command) == command


@pytest.mark.parametrize("command", ["/dms/de ploy", "/dms/de\u00a0ploy", "/dms/\u3000"])
def test_a_command_with_whitespace_in_any_script_is_refused(command: str) -> None:
    with pytest.raises(MalformedToken, match="whitespace"):
        check_command(command)


def test_an_upper_case_command_is_neither_signed_nor_decoded() -> None:
    key = SigningKey.from_seed(b"\x05" * 32)
    with pytest.raises(MalformedToken, match="lowercase"):
        delegate(key, key.did, "/dms/Ärger", expiration=None)
    with pytest.raises(MalformedToken, match="lowercase"):
        invoke(key, key.did, "/dms/Ärger", {}, expiration=None)
    # a token another implementation signed with such a command is refused on decode
    good = delegate(key, key.did, "/dms/ärger", expiration=None)
    forged = good.envelope.replace("/dms/ärger".encode(), "/dms/Ärger".encode())
    assert forged != good.envelope
    with pytest.raises(MalformedToken, match="lowercase"):
        Delegation.decode(forged)


def test_a_grant_covers_whole_segments_only() -> None:
    assert proves("/dms/deployment", "/dms/deployment/bid")
    assert not proves("/dms/deployment", "/dms/deployments")


def test_a_refused_command_stays_refused_however_often_it_is_checked() -> None:
    from ucan import command

    for _ in range(3):
        with pytest.raises(MalformedToken):
            check_command("/dms/Deploy")
    assert "/dms/Deploy" not in command._WELL_FORMED


def test_the_remembered_commands_stay_bounded_and_the_rest_are_still_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ucan import command

    monkeypatch.setattr(command, "_WELL_FORMED", set())
    monkeypatch.setattr(command, "_REMEMBERED", 8)
    for n in range(100):
        assert check_command(f"/junk/c{n}") == f"/junk/c{n}"
    assert len(command._WELL_FORMED) == 8
    long = "/" + "a" * 300
    assert check_command(long) == long
    assert long not in command._WELL_FORMED
    with pytest.raises(MalformedToken):
        check_command("/junk/c99/")  # past the bound: checked in full


def test_a_str_subclass_is_checked_in_full_not_looked_up() -> None:
    class Sneaky(str):
        def __eq__(self, other: object) -> bool:  # equal to a remembered command only
            return type(other) is str and str.__eq__(other, "/dms/deployment")

        def __hash__(self) -> int:
            return hash("/dms/deployment")

    check_command("/dms/deployment")
    with pytest.raises(MalformedToken):
        check_command(Sneaky("/NOT valid"))
