"""UCAN throughput against the raw Ed25519 verify rate measured in the same run.

Measures: raw pynacl verifies/s (the baseline); full validation of an invocation
arriving as a container (decode + validate + subject check) with a chain of depth 1, 4
and 8, with a cold trust context (nothing cached) and a warm one (the chain seen
before: one signature check and one decode per message); sealing (sign + encode + CID)
per second. The machine is shared, so every figure is measured in rounds that
alternate with the baseline, and each ratio is the median of its rounds' ratios.

Targets: warm >= 0.7x raw verify; cold depth 4 >= 0.2x (which is the ceiling: five
signatures to check).

Run: python bench/ucan_bench.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import nacl.signing

from ucan import SigningKey, TrustContext, delegate, encode_container, invoke

NOW = 1_750_000_000
ROUNDS = 7
ROUND_SECONDS = 0.25


def rate(action: Callable[[], object]) -> float:
    """Operations/s over about ROUND_SECONDS."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
        for _ in range(25):
            action()
        count += 25
    return count / elapsed


def against(baseline: Callable[[], object], action: Callable[[], object]) -> tuple[float, float]:
    """(median rate, median ratio to `baseline`) over ROUNDS alternating rounds."""
    rates, ratios = [], []
    for _ in range(ROUNDS):
        base = rate(baseline)
        measured = rate(action)
        rates.append(measured)
        ratios.append(measured / base)
    return statistics.median(rates), statistics.median(ratios)


def container_for(depth: int, keys: list[SigningKey]) -> bytes:
    proofs = [delegate(keys[n], keys[n + 1].did, "/dms/deployment", subject=keys[0].did,
                       policy=[["<=", ".cpu", 8]], expiration=NOW + 3600)
              for n in range(depth)]
    inv = invoke(keys[depth], keys[0].did, "/dms/deployment/bid", {"cpu": 2},
                 [p.cid for p in proofs], expiration=NOW + 60)
    return encode_container([inv.envelope, *(p.envelope for p in proofs)])


def main() -> int:
    raw_key = nacl.signing.SigningKey.generate()
    signed = raw_key.sign(b"x" * 400)
    verify_key = raw_key.verify_key

    def baseline() -> None:
        verify_key.verify(signed)

    print(f"raw pynacl verify            {rate(baseline):10.0f}/s   1.00x (baseline)")

    keys = [SigningKey.generate() for _ in range(9)]
    results: dict[tuple[str, int], float] = {}
    for depth in (1, 4, 8):
        container = container_for(depth, keys)
        subject = keys[0].did

        def cold(container: bytes = container, subject: str = subject) -> None:
            trust = TrustContext(subject)
            invocation, proofs = trust.open_container(container)
            trust.authorize(invocation, proofs, now=NOW)

        warm_trust = TrustContext(subject)

        def warm(container: bytes = container, trust: TrustContext = warm_trust) -> None:
            invocation, proofs = trust.open_container(container)
            trust.authorize(invocation, proofs, now=NOW)

        warm()
        for mode, action in (("cold", cold), ("warm", warm)):
            per_second, results[mode, depth] = against(baseline, action)
            print(f"validate depth {depth} {mode}        {per_second:10.0f}/s   "
                  f"{results[mode, depth]:.2f}x")

    signer = keys[0]
    audience = keys[1].did
    sealing, ratio = against(
        baseline, lambda: delegate(signer, audience, "/dms/deployment", expiration=NOW))
    print(f"seal (sign+encode+CID)       {sealing:10.0f}/s   {ratio:.2f}x")

    warm_worst = min(results["warm", d] for d in (1, 4, 8))
    cold_4 = results["cold", 4]
    print(f"\nwarm (worst depth) {warm_worst:.2f}x raw verify (target >= 0.70)")
    print(f"cold depth 4       {cold_4:.2f}x raw verify (target >= 0.20; ceiling 0.20: "
          f"{cold_4 / 0.2:.0%} of it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
