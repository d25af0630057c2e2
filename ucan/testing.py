"""Hypothesis strategies for property-testing authorization flows built on `ucan`.

    from hypothesis import given
    from ucan.testing import chains, scenarios

    @given(scenarios())
    def test_my_verifier_names_every_failure(scenario):
        outcome = my_verifier(scenario.invocation, scenario.proofs, now=scenario.now)
        assert outcome == scenario.error          # None when it must validate

What is drawn:
- `principals()`: signing keys (from drawn seeds, so failures shrink and replay).
- `chains(depth)`: valid delegation chains, root (issued by the subject) first, each
  link attenuating the one above it: a command one segment deeper or the same, a
  tighter cpu ceiling, an expiry no later, sometimes a powerline (`sub: null`).
- `invocations(chain, proven=...)`: invocations the chain does or does not prove.
- `scenarios()`: a valid chain plus one labelled mutation (or none) and the failure
  name it must cause, e.g. `("proofs reversed", "InvalidAudience")`.

Importing this module needs hypothesis (a test dependency, not a runtime one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from ucan.codec import CID
from ucan.delegation import Delegation, delegate
from ucan.envelope import INVOCATION_TAG, seal
from ucan.invocation import Invocation, invoke
from ucan.keys import SigningKey
from ucan.revocation import RevocationSet, revoke
from ucan.validate import Chain, validate_invocation

_EPOCH = 1_700_000_000
_DEPTHS = st.integers(1, 4)
_SEGMENTS = st.sampled_from(["dms", "deployment", "bid", "commit", "node", "status", "x", "a1"])


def principals() -> st.SearchStrategy[SigningKey]:
    """Ed25519 keys drawn from 32-byte seeds."""
    return st.binary(min_size=32, max_size=32).map(SigningKey.from_seed)


def commands(max_segments: int = 3) -> st.SearchStrategy[str]:
    """Well-formed commands, `/` included."""
    return st.lists(_SEGMENTS, max_size=max_segments).map(lambda s: "/" + "/".join(s))


@attrs.frozen
class ValidChain:
    """A delegation chain valid at `now`; `keys[0]` is the subject, `keys[-1]` holds it.

    `cpu_limit` is the tightest cpu ceiling its policies set and `region` the region
    they pin: `{"cpu": n, "region": region}` with `n <= cpu_limit` satisfies every
    policy."""

    keys: tuple[SigningKey, ...]
    delegations: tuple[Delegation, ...]
    now: int
    cpu_limit: int
    region: str

    @property
    def subject(self) -> str:
        return self.keys[0].did

    @property
    def holder(self) -> SigningKey:
        return self.keys[-1]

    @property
    def command(self) -> str:
        """The narrowest command the chain grants (its last link's)."""
        return self.delegations[-1].cmd

    @property
    def expiration(self) -> int | None:
        """When the first link expires (None: never)."""
        ends = [d.exp for d in self.delegations if d.exp is not None]
        return min(ends) if ends else None

    def invoke(self, command: str | None = None, args: dict[str, Any] | None = None, *,
               issuer: SigningKey | None = None, subject: str | None = None,
               proofs: Sequence[CID] | None = None, expiration: int | None = None,
               ) -> Invocation:
        """An invocation by the holder (or `issuer`) over this chain."""
        return invoke(
            self.holder if issuer is None else issuer,
            self.subject if subject is None else subject,
            self.command if command is None else command,
            {"cpu": 0, "region": self.region} if args is None else args,
            [d.cid for d in self.delegations] if proofs is None else proofs,
            expiration=expiration,
        )


@st.composite
def chains(draw: st.DrawFn, depth: int | st.SearchStrategy[int] = _DEPTHS,
           ) -> ValidChain:
    """Valid chains of `depth` delegations (an int, or a strategy of ints >= 1)."""
    size = depth if isinstance(depth, int) else draw(depth)
    if size < 1:
        raise ValueError(f"a chain has at least one delegation, asked for {size}")
    keys = tuple(draw(st.lists(principals(), min_size=size + 1, max_size=size + 1,
                               unique_by=lambda k: k.did)))
    now = draw(st.integers(_EPOCH, _EPOCH + 10**8))
    region = draw(st.sampled_from(["eu", "us", "ap"]))
    command = draw(commands(max_segments=2))
    cpu = draw(st.integers(1, 64))
    expiration: int | None = draw(st.none() | st.integers(now, now + 10**6))
    delegations: list[Delegation] = []
    for position in range(size):
        if position:
            # Attenuate: maybe one segment deeper, maybe a tighter ceiling, expiry no later.
            if draw(st.booleans()):
                command = command.rstrip("/") + "/" + draw(_SEGMENTS)
            cpu = draw(st.integers(0, cpu))
            latest = now + 10**6 if expiration is None else expiration
            expiration = draw(st.sampled_from([expiration, draw(st.integers(now, latest))]))
        policy: list[Any] = [["<=", ".cpu", cpu]]
        if draw(st.booleans()):
            policy.append(["==", ".region", region])
        not_before = draw(st.none() | st.integers(now - 10**5, now))
        powerline = position > 0 and draw(st.booleans())
        delegations.append(delegate(
            keys[position], keys[position + 1].did, command,
            subject=None if powerline else keys[0].did, policy=policy,
            expiration=expiration, not_before=not_before,
            nonce=draw(st.binary(min_size=12, max_size=12)),
        ))
    return ValidChain(keys, tuple(delegations), now, cpu, region)


@st.composite
def invocations(draw: st.DrawFn, chain: ValidChain, *, proven: bool = True) -> Invocation:
    """Invocations of `chain`'s holder that the chain proves (`proven=True`) or that
    fail on command (InvalidClaim) or arguments (MatchError) alone."""
    if proven:
        command = chain.command
        if draw(st.booleans()):
            command = command.rstrip("/") + "/" + draw(_SEGMENTS)
        args = {"cpu": draw(st.integers(0, chain.cpu_limit)), "region": chain.region}
        return chain.invoke(command, args)
    if chain.command != "/" and draw(st.booleans()):
        return chain.invoke(draw(outside(chain.command)))
    return chain.invoke(args=draw(_excessive_args(chain)))


def _excessive_args(chain: ValidChain) -> st.SearchStrategy[dict[str, Any]]:
    """Args over the chain's cpu ceiling (its policies all require `.cpu <= limit`)."""
    return st.builds(lambda cpu: {"cpu": cpu, "region": chain.region},
                     st.integers(chain.cpu_limit + 1, 10**6))


def outside(command: str) -> st.SearchStrategy[str]:
    """Commands `command` does not prove: string-prefix siblings, parents, strangers."""
    if command == "/":
        return st.nothing()
    parent = command.rsplit("/", 1)[0] or "/"
    return st.one_of(
        st.just(command + "s"),  # `/dms/deployments` is not under `/dms/deployment`
        st.just(parent),
        commands().filter(lambda c: not (c == command or c.startswith(command + "/"))),
    )


@attrs.frozen
class Scenario:
    """An invocation, what it is checked against, and the failure it must cause
    (`error` is a UcanError name, or None when it must validate)."""

    label: str
    error: str | None
    invocation: Invocation
    proofs: tuple[Delegation, ...]
    now: int
    revocations: tuple[Invocation, ...] = ()

    def revocation_set(self) -> RevocationSet:
        known = RevocationSet()
        for revocation in self.revocations:
            known.add(revocation)
        return known

    def validate(self) -> Chain:
        """Run `ucan.validate_invocation` on this scenario."""
        return validate_invocation(self.invocation, self.proofs, now=self.now,
                                   revoked=self.revocation_set())


@attrs.frozen
class _Impostor:
    """Claims `did` but signs with another key: a forged signature."""

    did: str
    key: SigningKey

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


MUTATIONS = (
    "none", "proof missing", "invocation expired", "delegation expired",
    "delegation not yet valid", "delegation signature forged", "invocation signature forged",
    "proofs reversed", "stranger invokes", "command widened", "args outside policy",
    "link revoked by its issuer", "revoked by a stranger", "wrong subject",
)


@st.composite
def scenarios(draw: st.DrawFn, depth: int | st.SearchStrategy[int] = _DEPTHS,
              mutation: str | st.SearchStrategy[str] | None = None,
              ) -> Scenario:
    """A valid chain with one labelled mutation (see MUTATIONS) and the failure name it
    must cause; "none" and "revoked by a stranger" must validate."""
    chain = draw(chains(depth))
    if mutation is None:
        mutation = st.sampled_from(MUTATIONS)
    label = mutation if isinstance(mutation, str) else draw(mutation)
    if label not in MUTATIONS:
        raise ValueError(f"unknown mutation {label!r}; choose from {MUTATIONS}")
    if label == "proofs reversed" and len(chain.delegations) < 2:
        label = "proof missing"
    if label == "command widened" and chain.command == "/":
        label = "args outside policy"  # `/` proves every command
    stranger = draw(principals().filter(lambda k: k.did not in {p.did for p in chain.keys}))
    proofs = chain.delegations
    now = chain.now

    def made(error: str | None, invocation: Invocation, proofs: Sequence[Delegation] = proofs,
             now: int = now, revocations: tuple[Invocation, ...] = ()) -> Scenario:
        return Scenario(label, error, invocation, tuple(proofs), now, revocations)

    position = draw(st.integers(0, len(proofs) - 1))
    target = proofs[position]
    if label == "none":
        return made(None, draw(invocations(chain)))
    if label == "proof missing":
        return made("UnavailableProof", chain.invoke(),
                    proofs[:position] + proofs[position + 1:])
    if label == "invocation expired":
        return made("Expired", chain.invoke(expiration=now - 1))
    if label == "delegation expired":
        ends = [d.exp for d in proofs if d.exp is not None]
        if not ends:
            return made("Expired", chain.invoke(expiration=now - 1))
        return made("Expired", chain.invoke(), now=max(ends) + 1)
    if label == "delegation not yet valid":
        # Expiry kept at or after nbf: `delegate` refuses a grant that could never be used.
        expiration = None if target.exp is None else max(target.exp, now + 1)
        later = delegate(chain.keys[position], target.aud, target.cmd, subject=target.sub,
                         policy=list(target.policy.source), expiration=expiration,
                         not_before=now + 1)
        proofs = (*proofs[:position], later, *proofs[position + 1:])
        return made("TooEarly", chain.invoke(proofs=[d.cid for d in proofs]), proofs)
    if label == "delegation signature forged":
        forged = delegate(_Impostor(target.iss, stranger), target.aud, target.cmd,
                          subject=target.sub, policy=list(target.policy.source),
                          expiration=target.exp, not_before=target.nbf, nonce=target.nonce)
        proofs = (*proofs[:position], forged, *proofs[position + 1:])
        return made("InvalidSignature", chain.invoke(proofs=[d.cid for d in proofs]), proofs)
    if label == "invocation signature forged":
        genuine = chain.invoke()
        sealed = seal(genuine.payload(), INVOCATION_TAG, _Impostor(genuine.iss, stranger))
        return made("InvalidSignature", Invocation.decode(sealed.envelope))
    if label == "proofs reversed":
        return made("InvalidAudience",
                    chain.invoke(proofs=[d.cid for d in reversed(proofs)]))
    if label == "stranger invokes":
        return made("InvalidAudience", chain.invoke(issuer=stranger))
    if label == "command widened":
        return made("InvalidClaim", chain.invoke(draw(outside(chain.command))))
    if label == "args outside policy":
        return made("MatchError", chain.invoke(args=draw(_excessive_args(chain))))
    if label == "link revoked by its issuer":
        return made("Revoked", chain.invoke(),
                    revocations=(revoke(chain.keys[position], target),))
    if label == "revoked by a stranger":
        return made(None, chain.invoke(), revocations=(revoke(stranger, target),))
    assert label == "wrong subject"
    return made("InvalidSubject", chain.invoke(subject=stranger.did))
