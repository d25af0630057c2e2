"""What a refused command tells its user: the grant to ask for (a deployment command's
family), what the grants presented cover instead, a node that is not the grants' subject,
and the user's own DID where the node named the command's throwaway key."""

from __future__ import annotations

from types import SimpleNamespace

from dms.actor import Handle, RemoteError
from dms.cli._session import Session, Target
from ucan import SigningKey, delegate

ORG, OTHER_NODE = SigningKey.generate(), SigningKey.generate()
USER, SESSION = SigningKey.generate(), SigningKey.generate()


def refusal(name: str, message: str, command: str, grants: tuple[str, ...] = (),
            node: str | None = None) -> str:
    proofs = tuple(delegate(ORG, USER.did, cmd, expiration=None) for cmd in grants)
    target = Target("ws://127.0.0.1:7000", None, USER, proofs)
    peer = node or ORG.did
    session = Session(SimpleNamespace(did=SESSION.did), target,  # type: ignore[arg-type]
                      Handle(peer, peer, peer, "root"))
    return session._refusal(RemoteError(name, message, peer, command))


def test_a_missing_deployment_grant_asks_for_the_whole_family() -> None:
    text = refusal("InvalidClaim", "no proof", "/dms/node/deployment/new")
    assert f"dms cap grant --to {USER.did} --cmd /dms/node/deployment -o FILE" in text


def test_another_command_asks_for_itself() -> None:
    text = refusal("InvalidClaim", "no proof", "/dms/node/resources")
    assert "--cmd /dms/node/resources -o FILE" in text


def test_grants_for_other_commands_are_named() -> None:
    text = refusal("InvalidClaim", "no proof", "/dms/node/deployment/list",
                   grants=("/dms/node/info",))
    assert "the grants you presented cover /dms/node/info, not /dms/node/deployment/list" in text


def test_a_node_that_is_not_the_grants_subject_is_named() -> None:
    text = refusal("InvalidSubject", f"subject {ORG.did} is neither this node nor an anchor",
                   "/dms/node/deployment/list", grants=("/dms/node/deployment",),
                   node=OTHER_NODE.did)
    assert f"your grants are on {ORG.did}, but the node at ws://127.0.0.1:7000 is " \
           f"{OTHER_NODE.did}: is it the node you meant?" in text


def test_the_commands_own_key_is_shown_as_the_users() -> None:
    text = refusal("InvalidClaim", f"{SESSION.did} invokes /dms/node/info without proof",
                   "/dms/node/info")
    assert SESSION.did not in text and f"this command's key for {USER.did}" in text
