"""Hostile review of `session_grants`: a command's fresh key acts for the user through
a re-delegation of the user's grants. It must never hold more than the user: not
another command, not past the grant's policy, not longer than the grant."""

from __future__ import annotations

import time

import pytest

from dms.cli._session import Target, session_grants
from ucan import SigningKey, TrustContext, UcanError, delegate, invoke

ORG, USER, SESSION, NODE = (SigningKey.generate() for _ in range(4))


def _authorize(grants: list, command: str, args: dict) -> None:  # type: ignore[type-arg]
    trust = TrustContext(NODE.did, anchors=[ORG.did])
    now = int(time.time())
    invocation = invoke(SESSION, ORG.did, command, args, [g.cid for g in grants],
                        audience=NODE.did, expiration=now + 60)
    trust.authorize(invocation, grants, now=now)


def _session(grant):  # type: ignore[no-untyped-def]
    handed = session_grants(Target("memory://node", NODE.did, USER, (grant,)), SESSION.did)
    assert [h.aud for h in handed] == [SESSION.did]
    return [grant, *handed]


def test_a_session_key_is_held_to_the_users_grant_policy() -> None:
    grant = delegate(ORG, USER.did, "/dms/node/deployment/status",
                     policy=[["==", ".id", "mine"]], expiration=None)
    chain = _session(grant)
    _authorize(chain, "/dms/node/deployment/status", {"id": "mine"})
    with pytest.raises(UcanError):
        _authorize(chain, "/dms/node/deployment/status", {"id": "someone-elses"})


def test_a_session_key_holds_no_other_command_than_the_users() -> None:
    chain = _session(delegate(ORG, USER.did, "/dms/node/deployment/list", expiration=None))
    _authorize(chain, "/dms/node/deployment/list", {})
    with pytest.raises(UcanError):
        _authorize(chain, "/dms/node/deployment/shutdown", {"id": "x"})


def test_a_session_key_never_outlives_the_users_grant() -> None:
    ends = int(time.time()) + 30
    grant = delegate(ORG, USER.did, "/dms/node/deployment", expiration=ends)
    handed = session_grants(Target("memory://node", NODE.did, USER, (grant,)), SESSION.did)
    assert handed[0].exp is not None and handed[0].exp <= ends
    unbounded = delegate(ORG, USER.did, "/dms/node/deployment", expiration=None)
    handed = session_grants(Target("memory://node", NODE.did, USER, (unbounded,)),
                            SESSION.did)
    assert handed[0].exp is not None and handed[0].exp <= int(time.time()) + 24 * 3600


def test_grants_the_user_holds_for_others_are_not_handed_on() -> None:
    theirs = delegate(ORG, SigningKey.generate().did, "/dms", expiration=None)
    assert session_grants(Target("memory://node", NODE.did, USER, (theirs,)),
                          SESSION.did) == []
