"""UCAN throughput against the raw Ed25519 verify rate measured in the same run, with
the native DAG-CBOR codec (cbrrr) and the cbor2 reference codec side by side.

Measures: raw pynacl verifies/s (the baseline); full validation of an invocation
arriving as a container (decode + validate + subject check) with a chain of depth 1, 4
and 8, with a cold trust context (nothing cached) and a warm one (the chain seen
before: one signature check and one decode per message); sealing (sign + encode + CID)
per second; decode and encode of real envelopes. Each of those runs with both codecs.
The machine is shared, so every figure is measured in rounds that alternate the
baseline, the reference codec and the native one, and each ratio is the median of its
rounds' ratios ("new/old" is the median of the per-round native/reference ratios).

Targets: warm >= 0.75x raw verify at depth 1 and >= 0.6x at depth 8; cold depth 4
>= 0.2x (which is the ceiling: five signatures to check).

Run: python bench/ucan_bench.py            (about two minutes)
     python bench/ucan_bench.py --profile  (then where a warm depth-8 validation goes)
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import nacl.signing

from ucan import SigningKey, TrustContext, codec, decode, delegate, encode, encode_container, invoke

NOW = 1_750_000_000
ROUNDS = 7
ROUND_SECONDS = 0.2
CODECS = ("reference", "native")


def rate(action: Callable[[], object]) -> float:
    """Operations/s over about ROUND_SECONDS."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
        for _ in range(25):
            action()
        count += 25
    return count / elapsed


@contextmanager
def codec_in_use(name: str) -> Iterator[None]:
    """Run with the named codec: 'reference' is what runs where cbrrr is missing."""
    native = codec._native  # the bench reaches in on purpose: same code, other codec
    if name == "reference":
        codec._native = None
    try:
        yield
    finally:
        codec._native = native


def against(baseline: Callable[[], object],
            action: Callable[[], object]) -> dict[str, tuple[float, float]]:
    """Per codec: (median rate, median ratio to `baseline`), plus 'new/old': (median of
    per-round native/reference ratios, 0) over ROUNDS rounds alternating all three."""
    rates: dict[str, list[float]] = {name: [] for name in CODECS}
    ratios: dict[str, list[float]] = {name: [] for name in CODECS}
    gains = []
    for _ in range(ROUNDS):
        base = rate(baseline)
        for name in CODECS:
            with codec_in_use(name):
                measured = rate(action)
            rates[name].append(measured)
            ratios[name].append(measured / base)
        gains.append(rates["native"][-1] / rates["reference"][-1])
    result = {name: (statistics.median(rates[name]), statistics.median(ratios[name]))
              for name in CODECS}
    result["new/old"] = (statistics.median(gains), 0.0)
    return result


def container_for(depth: int, keys: list[SigningKey]) -> bytes:
    return encode_container([env for env in chain_for(depth, keys)])


def chain_for(depth: int, keys: list[SigningKey]) -> list[bytes]:
    """[invocation envelope, proof envelopes...] for a chain of `depth` delegations."""
    proofs = [delegate(keys[n], keys[n + 1].did, "/dms/deployment", subject=keys[0].did,
                       policy=[["<=", ".cpu", 8]], expiration=NOW + 3600)
              for n in range(depth)]
    inv = invoke(keys[depth], keys[0].did, "/dms/deployment/bid", {"cpu": 2},
                 [p.cid for p in proofs], expiration=NOW + 60)
    return [inv.envelope, *(p.envelope for p in proofs)]


def show(label: str, result: dict[str, tuple[float, float]]) -> None:
    old_rate, old_ratio = result["reference"]
    new_rate, new_ratio = result["native"]
    print(f"{label:28} {old_rate:9.0f}/s {old_ratio:5.2f}x   {new_rate:9.0f}/s "
          f"{new_ratio:5.2f}x   {result['new/old'][0]:5.2f}")


def warm_validation(depth: int, keys: list[SigningKey]) -> Callable[[], None]:
    container = container_for(depth, keys)
    trust = TrustContext(keys[0].did)

    def warm() -> None:
        invocation, proofs = trust.open_container(container)
        trust.authorize(invocation, proofs, now=NOW)

    warm()
    return warm


def profile_warm(depth: int, keys: list[SigningKey]) -> None:
    warm = warm_validation(depth, keys)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5000):
        warm()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    print(out.getvalue())


def main(argv: list[str]) -> int:
    raw_key = nacl.signing.SigningKey.generate()
    signed = raw_key.sign(b"x" * 400)
    verify_key = raw_key.verify_key

    def baseline() -> None:
        verify_key.verify(signed)

    keys = [SigningKey.generate() for _ in range(9)]
    if "--profile" in argv:
        profile_warm(int(argv[argv.index("--profile") + 1]) if len(argv) > argv.index("--profile") + 1 else 8, keys)
        return 0

    print(f"raw pynacl verify  {rate(baseline):10.0f}/s (the baseline, 1.00x)")
    print(f"{'':28} {'reference (cbor2)':>18}   {'native (cbrrr)':>16}   new/old")
    results: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}
    for depth in (1, 4, 8):
        container = container_for(depth, keys)
        subject = keys[0].did

        def cold(container: bytes = container, subject: str = subject) -> None:
            trust = TrustContext(subject)
            invocation, proofs = trust.open_container(container)
            trust.authorize(invocation, proofs, now=NOW)

        for mode, action in (("cold", cold), ("warm", warm_validation(depth, keys))):
            results[mode, depth] = against(baseline, action)
            show(f"validate depth {depth} {mode}", results[mode, depth])

    signer = keys[0]
    audience = keys[1].did
    show("seal (sign+encode+CID)", against(
        baseline, lambda: delegate(signer, audience, "/dms/deployment", expiration=NOW)))

    invocation, delegation = chain_for(8, keys)[:2]
    for name, envelope in (("delegation", delegation), ("invocation, 8 proofs", invocation)):
        value = decode(envelope)
        show(f"decode {name}", against(baseline, lambda e=envelope: decode(e)))
        show(f"encode {name}", against(baseline, lambda v=value: encode(v)))

    print()
    for depth, target in ((1, 0.75), (8, 0.6)):
        old, new = results["warm", depth]["reference"][1], results["warm", depth]["native"][1]
        print(f"warm depth {depth}: {old:.2f}x -> {new:.2f}x raw verify (target >= {target})")
    cold_4 = results["cold", 4]["native"][1]
    print(f"cold depth 4: {cold_4:.2f}x raw verify (target >= 0.20; ceiling 0.20: "
          f"{cold_4 / 0.2:.0%} of it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
