import random

import pytest

from dms.backoff import Backoff


def test_delays_double_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, factor=2, maximum=3)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]


def test_without_jitter_delays_are_exact_and_need_no_rng() -> None:
    assert Backoff().delay(3) == 4.0
    assert Backoff().delay(3, random.Random(1)) == 4.0


def test_jitter_stays_within_its_band_and_is_reproducible() -> None:
    backoff = Backoff(initial=1, maximum=8, jitter=0.25)
    delays = [backoff.delay(n, random.Random(7)) for n in range(1, 6)]
    assert delays == [backoff.delay(n, random.Random(7)) for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        base = min(8, 2 ** (n - 1))
        assert 0.75 * base <= delay <= 1.25 * base
    assert delays[0] != 1.0


def test_jitter_without_an_rng_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an rng"):
        Backoff(jitter=0.1).delay(1)


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"factor": 0.5}, {"jitter": 1.0}, {"initial": 5, "maximum": 1}]
)
def test_unusable_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
