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
