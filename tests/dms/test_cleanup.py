import trio

from dms.cleanup import shielded_cleanup


async def test_cleanup_runs_to_the_end_inside_a_cancelled_scope() -> None:
    finished = False
    with trio.CancelScope() as outer:
        outer.cancel()
        with shielded_cleanup(5):
            await trio.sleep(0.01)
            finished = True
    assert finished


async def test_cleanup_that_hangs_is_abandoned_at_its_deadline() -> None:
    clock_start = trio.current_time()
    with trio.CancelScope() as outer:
        outer.cancel()
        with shielded_cleanup(0.05) as cleanup:
            await trio.sleep_forever()
    assert cleanup.cancelled_caught
    assert 0.05 <= trio.current_time() - clock_start < 1


async def test_the_deadline_counts_from_the_call() -> None:
    await trio.sleep(0.05)
    with shielded_cleanup(0.2) as cleanup:
        await trio.sleep(0.1)
    assert not cleanup.cancelled_caught
