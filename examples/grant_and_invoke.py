"""Grant, delegate, invoke, revoke: the capability model in one page.

A root (an organisation), a node and an actor on that node. The root grants the node
`/dms/deployment` with a policy capping cpu at 4; the node delegates a narrower
`/dms/deployment/bid` to its actor for five minutes; the actor's invocation validates
against the root's trust; then the node revokes its grant and the same invocation fails.

Run: python examples/grant_and_invoke.py
"""

from __future__ import annotations

import time

from ucan import (
    Revoked,
    SigningKey,
    TrustContext,
    UcanError,
    delegate,
    invoke,
    revoke,
)


def main() -> int:
    now = int(time.time())
    root, node, actor = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    print(f"root  {root.did}\nnode  {node.did}\nactor {actor.did}\n")

    grant = delegate(root, node.did, "/dms/deployment",
                     policy=[["<=", ".resources.cpu", 4]], expiration=now + 3600)
    narrower = delegate(node, actor.did, "/dms/deployment/bid", subject=root.did,
                        expiration=now + 300)
    print(f"root -> node   {grant.cmd} pol={list(grant.policy.source)}  {grant.cid}")
    print(f"node -> actor  {narrower.cmd}  {narrower.cid}\n")

    # The resource owner's view: it trusts itself (the subject) and holds the grants.
    verifier = TrustContext(root.did)
    proofs = [grant, narrower]

    def attempt(label: str, args: dict[str, object]) -> bool:
        inv = invoke(actor, root.did, "/dms/deployment/bid", args, [grant.cid, narrower.cid],
                     expiration=now + 30)
        try:
            chain = verifier.authorize(inv, proofs, now=now, audiences=[root.did])
        except UcanError as exc:
            print(f"{label:<34} refused: {exc}")
            return False
        print(f"{label:<34} authorized (chain of {len(chain.delegations)}, subject {chain.subject[:24]}...)")
        return True

    ok = attempt("bid for 2 cpus", {"resources": {"cpu": 2}})
    refused_policy = not attempt("bid for 8 cpus", {"resources": {"cpu": 8}})
    verifier.revocations.add(revoke(node, narrower))
    try:
        inv = invoke(actor, root.did, "/dms/deployment/bid", {"resources": {"cpu": 2}},
                     [grant.cid, narrower.cid], expiration=now + 30)
        verifier.authorize(inv, proofs, now=now, audiences=[root.did])
        refused_revoked = False
        print("after revocation: still authorized (wrong!)")
    except Revoked as exc:
        refused_revoked = True
        print(f"{'bid after node revoked actor':<34} refused: {exc}")
    return 0 if ok and refused_policy and refused_revoked else 1


if __name__ == "__main__":
    raise SystemExit(main())
