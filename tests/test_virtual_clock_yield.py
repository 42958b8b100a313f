"""Free-running virtual time (drivers/clock.py `VirtualClock(None, yield_every_s=…)`), as the core
process runs the sim board with --speedup 0: ticks that wake nobody need not turn the event loop,
but every sleeper still runs at exactly its own virtual time, and the loop's other work (the
channel, timers) is never held up longer than the bound. No wall-clock speed is asserted."""

from __future__ import annotations

import asyncio

import pytest

from drivers.clock import VirtualClock

PERIOD_S = 0.01


async def _count_turns(turns: list[int]) -> None:
    while True:
        await asyncio.sleep(0)
        turns[0] += 1


def test_by_default_every_tick_turns_the_loop() -> None:
    async def main() -> None:
        clock, turns = VirtualClock(None), [0]
        task = asyncio.create_task(_count_turns(turns))
        await asyncio.sleep(0)
        start = turns[0]
        for k in range(1, 101):
            await clock.tick_until(k * PERIOD_S)
        assert turns[0] - start >= 99
        task.cancel()

    asyncio.run(main())


def test_with_a_bound_ticks_that_wake_nobody_do_not_turn_the_loop() -> None:
    async def main() -> None:
        clock, turns = VirtualClock(None, yield_every_s=3600.0), [0]
        task = asyncio.create_task(_count_turns(turns))
        await asyncio.sleep(0)
        start = turns[0]
        for k in range(1, 1001):
            await clock.tick_until(k * PERIOD_S)
        assert turns[0] - start <= 1  # the first tick yields; the next within the hour do not
        assert clock.now_s() == pytest.approx(10.0)
        task.cancel()

    asyncio.run(main())


def test_with_a_bound_every_sleeper_still_runs_at_its_own_virtual_time() -> None:
    async def main() -> None:
        clock = VirtualClock(None, yield_every_s=3600.0)
        woke_at: list[tuple[float, float]] = []

        async def sleeper(deadline_s: float) -> None:
            await clock.sleep_until(deadline_s)
            woke_at.append((deadline_s, clock.now_s()))

        deadlines = [0.05, 0.3, 0.31, 2.0, 7.77]
        tasks = [asyncio.create_task(sleeper(d)) for d in deadlines]
        await asyncio.sleep(0)  # they register their deadlines
        for k in range(1, 1001):
            await clock.tick_until(k * PERIOD_S)
        await asyncio.gather(*tasks)
        for deadline_s, now_s in woke_at:
            # resumed on the first tick at or after its deadline, before the clock moved on
            assert deadline_s <= now_s < deadline_s + PERIOD_S
        assert sorted(d for d, _ in woke_at) == deadlines

    asyncio.run(main())


def test_with_a_bound_the_loop_still_turns_within_it() -> None:
    async def main() -> None:
        clock, turns = VirtualClock(None, yield_every_s=0.001), [0]
        task = asyncio.create_task(_count_turns(turns))
        await asyncio.sleep(0)
        start = turns[0]
        k = 0
        loop = asyncio.get_running_loop()
        began = loop.time()
        while loop.time() - began < 0.05:  # 50 ms of wall time: the loop must turn again and again
            k += 1
            await clock.tick_until(k * PERIOD_S)
        assert turns[0] - start >= 2
        task.cancel()

    asyncio.run(main())


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="yield_every_s"):
        VirtualClock(None, yield_every_s=-1.0)
