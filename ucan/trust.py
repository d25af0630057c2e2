"""A principal's trust context: whom it believes and what it holds.

- `anchors`: DIDs whose authority this principal accepts as the root of a chain
  (besides its own DID). An invocation is authorized here only when its subject is
  this principal or an anchor.
- `provided`: delegations this principal holds, used to build its own proof chains.
- `revocations`: every verified revocation it has seen.
- a bounded cache of delegation CIDs whose signatures were verified, so a steady
  stream of invocations over one chain costs one signature check each, and a bounded
  cache of decoded delegations by CID, so it costs one decode (the invocation's) too.
  Reusing a decoded delegation is safe because its CID is the hash of the exact bytes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, MutableSet
from typing import Any

import attrs

from ucan.codec import CID
from ucan.command import proves
from ucan.container import decode_container
from ucan.delegation import Delegation
from ucan.envelope import DELEGATION_TAG, unseal
from ucan.errors import InvalidAudience, InvalidSubject, MalformedToken, Revoked, UcanError
from ucan.invocation import Invocation
from ucan.policy import Budget
from ucan.revocation import RevocationSet, revoked_cid
from ucan.validate import (
    Chain,
    check_invocation,
    check_policies,
    index_proofs,
    validate_invocation,
)

MAX_CHAIN_DEPTH = 16


class VerifiedCache(MutableSet[CID]):
    """A bounded set (least recently added goes first) of verified delegation CIDs."""

    def __init__(self, capacity: int = 65536) -> None:
        self._items: OrderedDict[CID, None] = OrderedDict()
        self.capacity = capacity

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[CID]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, value: CID) -> None:
        self._items[value] = None
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def discard(self, value: CID) -> None:
        self._items.pop(value, None)


DECODED_OVERHEAD = 1024
"""Heap bytes a decoded delegation costs beside its envelope (measured: about 1.3 KB in
all for a 334-byte one), charged to the decoded cache's byte bound."""


class DecodedCache:
    """A bounded map (least recently added goes first) of decoded delegations by their
    exact envelope bytes: a lookup costs a hash of the bytes, not a sha2-256 and a CID.

    Bounded in entries and in bytes (each entry's envelope and `DECODED_OVERHEAD`): a
    miss only costs a decode, so the cache is sized for the chains a node sees again
    (its peers' and actors' current grants), not for every delegation it ever saw. At
    its cap it holds about 6 MB. The trust context adds only delegations that were part
    of an authorized chain, so refused or unsigned junk never stays."""

    def __init__(self, capacity: int = 4096, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._items: OrderedDict[bytes, Delegation] = OrderedDict()
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0

    def get(self, envelope: bytes) -> Delegation | None:
        return self._items.get(envelope)

    def add(self, delegation: Delegation) -> None:
        envelope = delegation.envelope
        if envelope in self._items:
            return
        self._items[envelope] = delegation
        self.bytes += len(envelope) + DECODED_OVERHEAD
        while self._items and (len(self._items) > self.capacity or self.bytes > self.max_bytes):
            old, _ = self._items.popitem(last=False)
            self.bytes -= len(old) + DECODED_OVERHEAD

    def forget_expired(self, now: int, grace: int) -> int:
        """Drop the delegations that expired over `grace` seconds before `now` (a
        decoded delegation outlives its use otherwise); how many were dropped."""
        gone = [envelope for envelope, delegation in self._items.items()
                if delegation.exp is not None and delegation.exp + grace < now]
        for envelope in gone:
            del self._items[envelope]
            self.bytes -= len(envelope) + DECODED_OVERHEAD
        return len(gone)

    def __len__(self) -> int:
        return len(self._items)


class ProvidedDelegations(dict[CID, Delegation]):
    """The delegations a principal holds, by CID, with a `version` that grows on every
    change: whoever remembers a choice made from them (a sender's chosen proof chain)
    knows when to choose again. A dict, so that reading it costs what a dict costs."""

    version: int = 0

    def _changed(self) -> None:
        self.version += 1

    def __setitem__(self, key: CID, value: Delegation) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: CID) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, key: CID, *default: Any) -> Any:
        self._changed()
        return super().pop(key, *default)

    def popitem(self) -> tuple[CID, Delegation]:
        self._changed()
        return super().popitem()

    def setdefault(self, key: CID, default: Delegation) -> Delegation:
        self._changed()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def __ior__(self, other: Any) -> ProvidedDelegations:  # type: ignore[override,misc]
        self.update(other)
        return self


VOUCHED_OVERHEAD = 400
"""Heap bytes a vouched delegation costs beside its issuers' DIDs (measured: about 430 B
for one of a two-link chain: its CID, its dict slots, the issuer set and its expiry),
charged to the byte bound."""


class VouchedDelegations:
    """Delegations seen in chains authorized here, each with the issuers at or above it
    in those chains: whose revocation of it would change what this principal accepts.

    Bounded in entries and in bytes (least recently vouched goes first); only an
    authorized chain adds to it, so a stranger cannot fill it. An entry decides something
    only while its delegation can still validate: `forget_expired` drops the ones that
    expired long ago (past any skew), so a steady stream of short-lived grants (every
    actor's) keeps it level instead of filling it to its cap over hours."""

    def __init__(self, capacity: int = 65536, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._items: OrderedDict[CID, frozenset[str]] = OrderedDict()
        self._expiries: dict[CID, int | None] = {}
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0

    @staticmethod
    def _cost(issuers: frozenset[str]) -> int:
        return VOUCHED_OVERHEAD + sum(len(issuer) for issuer in issuers)

    def vouch(self, chain: Iterable[Delegation]) -> None:
        """Record a chain (root first) that was authorized here."""
        above: list[str] = []
        for delegation in chain:
            above.append(delegation.iss)
            known = self._items.pop(delegation.cid, None)
            if known is not None:
                self.bytes -= self._cost(known)
            issuers = frozenset(above) if known is None else known | frozenset(above)
            self._items[delegation.cid] = issuers
            self.bytes += self._cost(issuers)
            self._expiries[delegation.cid] = delegation.exp
        while self._items and (len(self._items) > self.capacity
                               or self.bytes > self.max_bytes):
            gone, issuers = self._items.popitem(last=False)
            self.bytes -= self._cost(issuers)
            del self._expiries[gone]

    def forget_expired(self, now: int, grace: int) -> list[CID]:
        """Forget the delegations that expired over `grace` seconds before `now` (no
        chain holding one validates again, give or take any skew up to `grace`); the
        CIDs forgotten."""
        gone = [cid for cid, exp in self._expiries.items()
                if exp is not None and exp + grace < now]
        for cid in gone:
            self.bytes -= self._cost(self._items.pop(cid))
            del self._expiries[cid]
        return gone

    def revocable_by(self, cid: CID, issuer: str) -> bool:
        issuers = self._items.get(cid)
        return issuers is not None and issuer in issuers

    def expiry(self, cid: CID) -> int | None:
        """When the vouched delegation `cid` expires (None: never, or not vouched)."""
        return self._expiries.get(cid)

    def __len__(self) -> int:
        return len(self._items)


class KeptRevocations(RevocationSet):
    """A revocation set that never forgets the revocations that matter to its owner
    (`keeps(revocation, target)`): those of its owner and its anchors, and those that
    change a chain it holds or has authorized.

    The set is bounded because anybody may sign revocations of anything; past its
    capacity the oldest unimportant record goes. Without this, a grantee whose grant was
    revoked could flood junk revocations until the revocation was forgotten and the grant
    held again. A revocation that matters is signed by a principal of a chain its owner
    accepted, so keeping them costs no more than what those principals chose to revoke.
    """

    def __init__(self, keeps: Callable[[Invocation, CID], bool], capacity: int = 100_000,
                 *, expiry_of: Callable[[CID], int | None] = lambda _: None) -> None:
        """`expiry_of(target)`: when the revoked delegation expires, if known; its
        revocation is kept until then (`forget_expired`), for good otherwise."""
        super().__init__(capacity)
        self.keeps = keeps
        self.expiry_of = expiry_of
        self.on_keep: Callable[[Invocation, int | None], object] | None = None
        """Called once for each revocation kept, with when what it revokes expires (None:
        never, or not known): a node writes both to disk."""
        self._kept: dict[CID, Invocation] = {}
        self._until: dict[CID, int] = {}  # kept revocation -> its target's expiry

    def add(self, revocation: Invocation, *, until: int | None = None) -> CID:
        """Record a verified revocation; `until`: when the revoked delegation expires,
        when the caller knows (its issuer revoking a delegation it signed)."""
        target = revoked_cid(revocation)
        if not self.keeps(revocation, target):
            return super().add(revocation)
        self.keep(revocation, target, until=until)
        return target

    def keep(self, revocation: Invocation, target: CID, *, until: int | None = None) -> None:
        """Keep a verified revocation (moving it out of the bounded part) until `until`,
        or what `expiry_of` says, past which `forget_expired` may drop it; for good when
        neither knows when the revoked delegation expires."""
        if revocation.cid in self._kept:
            return
        if revocation.cid in self._records:
            self._forget(revocation.cid)
        self._kept[revocation.cid] = revocation
        self._revokers.setdefault(target, set()).add(revocation.iss)
        if until is None:
            until = self.expiry_of(target)
        if until is not None:
            self._until[revocation.cid] = until
        self.version += 1
        if self.on_keep is not None:
            self.on_keep(revocation, until)

    def forget_expired(self, now: int, grace: int) -> list[Invocation]:
        """Forget the revocations that decide nothing any more: kept ones whose revoked
        delegation expired over `grace` seconds before `now` (no chain holding it can
        validate again; every stopped actor's revocation would be kept forever), and any,
        kept or not, whose own `exp` is before `now`. A revoker dates its revocation
        past what it revokes expires, so that a node that never saw the delegation, and
        cannot know its expiry, need not keep the revocation for good (spec/security.md,
        "Revocations that expire"). Returns the kept ones forgotten (a node removes them
        from disk); the bounded part is in memory only."""
        gone = [revocation for cid, revocation in self._kept.items()
                if (cid in self._until and self._until[cid] + grace < now)
                or (revocation.exp is not None and revocation.exp < now)]
        for revocation in gone:
            del self._kept[revocation.cid]
            self._until.pop(revocation.cid, None)
            target = revoked_cid(revocation)
            still = any(r.iss == revocation.iss and revoked_cid(r) == target
                        for r in self._kept.values()) or self._pairs.get(
                            (target, revocation.iss), 0) > 0
            if not still:
                issuers = self._revokers.get(target, set())
                issuers.discard(revocation.iss)
                if not issuers:
                    self._revokers.pop(target, None)
        lapsed = [cid for cid, record in self._records.items()
                  if record.exp is not None and record.exp < now]
        for cid in lapsed:
            self._forget_record(cid)
        if gone or lapsed:
            self.version += 1
        return gone

    def _forget_record(self, cid: CID) -> None:
        """Drop a record of the bounded part, leaving the revoker counted for its target
        while a kept revocation of the same pair remains."""
        record = self._records[cid]
        target = record.args["revoke"]
        self._forget(cid)
        if any(r.iss == record.iss and r.args["revoke"] == target
               for r in self._kept.values()):
            self._revokers.setdefault(target, set()).add(record.iss)

    def kept(self, revocation: Invocation) -> bool:
        return revocation.cid in self._kept

    def kept_revocations(self) -> list[Invocation]:
        return list(self._kept.values())

    def kept_until(self, revocation: CID) -> int | None:
        """When what kept revocation `revocation` revokes expires (None: never, not
        known, or not kept): what a node writes beside it on disk."""
        return self._until.get(revocation)

    def __iter__(self) -> Iterator[Invocation]:
        yield from self._kept.values()
        yield from super().__iter__()

    def __len__(self) -> int:
        return len(self._kept) + super().__len__()


PROVEN_CHAINS = 4096
PROVEN_BYTES = 8 * 1024 * 1024
PROVEN_OVERHEAD = 600
"""Heap bytes a proven chain costs beside its delegations (its key, `_Proven`, tuples)."""


def _checked_already(_: Invocation) -> bool:
    """The invocation check's stand-in when the caller verified the signature itself."""
    return True


@attrs.frozen
class _Proven:
    """A chain that passed every chain-level check, and the window in which it holds."""

    delegations: tuple[Delegation, ...]
    valid_from: int | None  # latest nbf in the chain
    valid_until: int | None  # earliest exp in the chain
    revocations: int  # the revocation set's version when it was validated

    @property
    def cost(self) -> int:
        """Bytes charged for it: its delegations counted whole, though the decoded cache
        usually shares them, so the bound holds when it does not."""
        return PROVEN_OVERHEAD + sum(len(d.envelope) + DECODED_OVERHEAD
                                     for d in self.delegations)


class ProvenChains:
    """Chains validated lately, by (proofs, invoker, subject, command): bounded in
    entries and in bytes (least recently added goes first), and rid of chains past
    their window by `forget_expired`. Only saves work: a chain not found is validated
    in full again."""

    def __init__(self, capacity: int = PROVEN_CHAINS, max_bytes: int = PROVEN_BYTES) -> None:
        self._items: OrderedDict[tuple[Any, ...], _Proven] = OrderedDict()
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0

    def get(self, key: tuple[Any, ...]) -> _Proven | None:
        return self._items.get(key)

    def put(self, key: tuple[Any, ...], proven: _Proven) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.cost
        self._items[key] = proven
        self.bytes += proven.cost
        while self._items and (len(self._items) > self.capacity
                               or self.bytes > self.max_bytes):
            _, gone = self._items.popitem(last=False)
            self.bytes -= gone.cost

    def forget_expired(self, now: int, grace: int) -> int:
        """Drop the chains whose window closed over `grace` seconds before `now`; how
        many were dropped."""
        gone = [key for key, proven in self._items.items()
                if proven.valid_until is not None and proven.valid_until + grace < now]
        for key in gone:
            self.bytes -= self._items.pop(key).cost
        return len(gone)

    def __len__(self) -> int:
        return len(self._items)


class TrustContext:
    def __init__(self, did: str, anchors: Iterable[str] = ()) -> None:
        self.did = did
        self.anchors: set[str] = set(anchors)
        self.provided = ProvidedDelegations()
        self.vouched = VouchedDelegations()
        self.revocations = KeptRevocations(self.revocation_matters,
                                           expiry_of=self.expiry_of)
        self.verified = VerifiedCache()
        self.decoded = DecodedCache()
        self._proven = ProvenChains()

    def expiry_of(self, cid: CID) -> int | None:
        """When delegation `cid` expires, if it is held or was vouched here (None: never,
        or not known)."""
        held = self.provided.get(cid)
        return held.exp if held is not None else self.vouched.expiry(cid)

    def forget_expired(self, now: int, grace: int) -> int:
        """Forget what concerns only delegations that expired over `grace` seconds
        before `now` (at least any skew chains are validated with): their vouching, their
        verified signatures, their decoded copies and the chains proven with them. None
        of it decides anything any more, and each stopped actor's grants would otherwise
        stay until the caches' caps push them out (hours). How many entries went."""
        gone = self.vouched.forget_expired(now, grace)
        for cid in gone:
            self.verified.discard(cid)
        return (len(gone) + self.decoded.forget_expired(now, grace)
                + self._proven.forget_expired(now, grace))

    def decode_delegation(self, data: bytes) -> Delegation:
        """`Delegation.decode`, answered from the cache when these exact bytes were seen."""
        data = bytes(data)
        cached = self.decoded.get(data)
        if cached is not None:
            return cached
        delegation = Delegation.decode(data)
        self.decoded.add(delegation)
        return delegation

    def open_container(
        self, data: bytes | str, *, max_tokens: int | None = None
    ) -> tuple[Invocation, dict[CID, Delegation]]:
        """The one invocation in a container and the delegations beside it (by CID).

        MalformedToken when the container holds no invocation or more than one, or more
        than `max_tokens` tokens (checked before any token is decoded). Delegations seen
        before in an authorized chain are not decoded again.
        """
        invocations: list[Invocation] = []
        delegations: dict[CID, Delegation] = {}
        tokens = decode_container(data)
        if max_tokens is not None and len(tokens) > max_tokens:
            raise MalformedToken(f"a container of {len(tokens)} tokens (at most {max_tokens})")
        for token in tokens:
            cached = self.decoded.get(token)
            if cached is not None:
                delegations[cached.cid] = cached
                continue
            unsealed = unseal(token)
            if unsealed.kind == DELEGATION_TAG:
                # Not cached yet: only what proves an authorized invocation is (authorize).
                delegation = Delegation.from_unsealed(unsealed)
                delegations[delegation.cid] = delegation
            else:
                invocations.append(Invocation.from_unsealed(unsealed))
        if len(invocations) != 1:
            raise MalformedToken(
                f"a container must carry exactly one invocation, this one has {len(invocations)}"
            )
        return invocations[0], delegations

    def add_anchor(self, did: str) -> None:
        self.anchors.add(did)

    def provide(self, *delegations: Delegation) -> None:
        """Hold delegations (grants to this principal or links above them)."""
        for delegation in delegations:
            self.provided[delegation.cid] = delegation

    def trusts_subject(self, subject: str) -> bool:
        return subject == self.did or subject in self.anchors

    def revocation_matters(self, revocation: Invocation, target: CID) -> bool:
        """Whether a (verified) revocation can change what this principal accepts or
        uses: issued by itself or an anchor, or by the issuer or subject of a delegation
        it holds, or by a principal at or above the revoked delegation in a chain it
        authorized. Anybody else's revocation changes nothing here that it has seen."""
        if self.trusts_subject(revocation.iss) or self.vouched.revocable_by(target, revocation.iss):
            return True
        held = self.provided.get(target)
        return held is not None and revocation.iss in (held.iss, held.sub)

    def authorize(
        self,
        invocation: Invocation,
        proofs: Mapping[CID, Delegation] | Iterable[Delegation],
        *,
        now: int,
        audiences: Iterable[str] | None = None,
        signature_checked: bool = False,
        skew: int = 0,
        owners: Iterable[str] = (),
        policy_budget: Budget | None = None,
    ) -> Chain:
        """Validate `invocation` for execution here, or raise the UcanError naming why.

        `audiences` are the DIDs that may execute it here (default: this principal);
        a mis-addressed invocation fails with InvalidAudience. The chain's subject must
        be this principal, one of its anchors or one of `owners` (principals that own a
        resource here, e.g. the audience actor's own key; InvalidSubject otherwise). `skew`
        seconds of clock difference are tolerated on every time bound. `policy_budget`
        bounds the policy evaluation (a fresh `POLICY_BUDGET` when None): a caller can
        give each sender a budget of its own and charge it what was spent.
        """
        if audiences is None:
            allowed: Container[str] = (self.did,)
        elif isinstance(audiences, (set, frozenset)):
            allowed = audiences
        else:
            allowed = set(audiences)
        if invocation.audience not in allowed:
            raise InvalidAudience(
                f"invocation {invocation.cid} is addressed to {invocation.audience}, not here"
            )
        # Before any chain work: a stranger's self-made chain must cost us nothing.
        if not (self.trusts_subject(invocation.sub) or invocation.sub in owners):
            raise InvalidSubject(
                f"invocation {invocation.cid}: subject {invocation.sub} is neither "
                f"{self.did} nor one of its anchors"
            )
        verify_invocation = _checked_already if signature_checked else None
        by_cid = index_proofs(proofs)
        key = (invocation.prf, invocation.iss, invocation.sub, invocation.cmd)
        proven = self._proven.get(key) if invocation.prf else None
        if proven is not None and self._still_proven(proven, invocation, by_cid, now, skew):
            # Same chain, same invoker, subject and command as one already validated:
            # only what depends on this invocation is checked again.
            check_invocation(invocation, now=now, skew=skew,
                             verify_invocation=verify_invocation)
            check_policies(invocation, proven.delegations, policy_budget)
            chain = Chain(invocation, proven.delegations)
        else:
            try:
                chain = validate_invocation(invocation, by_cid, now=now, revoked=self.revocations,
                                            verified=self.verified,
                                            verify_invocation=verify_invocation, skew=skew,
                                            policy_budget=policy_budget)
            except Revoked:
                self._keep_revocations_of(invocation, by_cid, now, skew, policy_budget)
                raise
            if chain.delegations:
                self._remember_proven(key, chain.delegations)
                self.vouched.vouch(chain.delegations)
                for delegation in chain.delegations:
                    self.decoded.add(delegation)
        return chain

    def _keep_revocations_of(self, invocation: Invocation, by_cid: Mapping[CID, Delegation],
                             now: int, skew: int, policy_budget: Budget | None) -> None:
        """A chain was refused as revoked: if it is otherwise authorized here, the
        revocations that refused it matter, and are kept for good. (Only then: anybody
        can sign a chain putting themselves above a real delegation they revoked.)"""
        try:
            chain = validate_invocation(invocation, by_cid, now=now, verified=self.verified,
                                        verify_invocation=lambda _: True, skew=skew,
                                        policy_budget=policy_budget)
        except UcanError:
            return
        self.vouched.vouch(chain.delegations)
        for delegation in chain.delegations:
            for revocation in self.revocations.records_of(delegation.cid):
                if self.vouched.revocable_by(delegation.cid, revocation.iss):
                    self.revocations.keep(revocation, delegation.cid)

    def _remember_proven(self, key: tuple[Any, ...], chain: tuple[Delegation, ...]) -> None:
        expiries = [d.exp for d in chain if d.exp is not None]
        starts = [d.nbf for d in chain if d.nbf is not None]
        self._proven.put(key, _Proven(chain, max(starts) if starts else None,
                                      min(expiries) if expiries else None,
                                      self.revocations.version))

    def _still_proven(self, proven: _Proven, invocation: Invocation,
                      by_cid: Mapping[CID, Delegation], now: int, skew: int) -> bool:
        """Whether a remembered chain still stands: no revocation arrived since (the set
        only grows), it is inside its time window, and the message carries its proofs."""
        return (
            proven.revocations == self.revocations.version
            and (proven.valid_until is None or now - skew <= proven.valid_until)
            and (proven.valid_from is None or now + skew >= proven.valid_from)
            and all(link in by_cid for link in invocation.prf)
        )

    def find_chain(
        self,
        holder: str,
        command: str,
        subject: str,
        *,
        now: int,
        extra: Mapping[CID, Delegation] | Iterable[Delegation] = (),
        args: Mapping[str, Any] | None = None,
        strict: bool = True,
        skew: int = 0,
    ) -> list[Delegation] | None:
        """A proof chain (root first) letting `holder` invoke `command` on `subject`,
        built from provided delegations (and `extra`), or None. Prefers the shortest.

        With `args`, delegations whose policy the args fail are skipped. Expired and
        not-yet-valid (give or take `skew` seconds) and revoked delegations are skipped
        unless `strict` is False
        (useful to send a chain anyway and learn from the verifier exactly why it
        fails)."""
        pool = dict(self.provided)
        pool.update(index_proofs(extra))
        usable = [d for d in pool.values()
                  if self._usable(d, command, subject, None if not strict else now, skew)
                  and (args is None or d.policy.first_failure(args) is None)]
        by_audience: dict[str, list[Delegation]] = {}
        for delegation in usable:
            by_audience.setdefault(delegation.aud, []).append(delegation)
        # breadth-first from the holder back towards a root issued by the subject
        queue: deque[list[Delegation]] = deque([d] for d in by_audience.get(holder, ()))
        while queue:
            path = queue.popleft()
            top = path[0]
            if top.sub == subject and top.iss == subject:
                chain = list(path)
                issuers = [d.iss for d in chain]
                if not strict or not any(
                    self.revocations.revokes(d.cid, issuers[: i + 1]) for i, d in enumerate(chain)
                ):
                    return chain
            if len(path) >= MAX_CHAIN_DEPTH:
                continue
            for parent in by_audience.get(top.iss, ()):
                if parent not in path:
                    queue.append([parent, *path])
        return None

    @staticmethod
    def _usable(delegation: Delegation, command: str, subject: str, now: int | None,
                skew: int = 0) -> bool:
        if delegation.sub is not None and delegation.sub != subject:
            return False
        if not proves(delegation.cmd, command):
            return False
        if now is None:
            return True
        if delegation.exp is not None and now - skew > delegation.exp:
            return False
        return delegation.nbf is None or now + skew >= delegation.nbf
