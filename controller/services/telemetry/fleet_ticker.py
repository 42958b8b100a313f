"""One pacemaker for every simulated machine in a `sim-fleet` process.

Forty control loops in one event loop, each on its own timerfd, wake wherever their start
happened to put them: machines whose deadlines fall within one cycle's CPU time of each other
wait for one another, and after any stall epoll hands the due timers back in no particular
order. `FleetTicker` instead gives slot `k` of `slots` the phase `k × period / slots`, and
wakes every machine that is due in deadline order from one timer (earliest deadline first).
Several machines may share a slot (sim_fleet.py puts a few on each: a wake-up of the process
costs an event-loop iteration, so fewer, fuller wake-ups cost less CPU).

The ticker waits on a pacer `Clock`. On the precise real-time clock (`TimerfdClock`) it has
a timerfd of its own and wakes the due machines straight from the event loop's callback: no
task of its own, so a wake-up costs what a machine's own timerfd would. On any other pacer (a
`VirtualClock` in tests) a task waits on the pacer's `tick_until`, of which it is the only
caller. Each machine sees its own `SlotClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math

from controller.core.timerfd_clock import Timerfd, TimerfdClock
from drivers.clock import Clock, VirtualClock

#: How long after its machine's phase point a `PhaseClock` wait ends: later than the control
#: deadlines of that phase (the ticker wakes in deadline order, so their cycles start first),
#: and early enough to be due at the same timer wake-up.
AFTER_CYCLE_S = 1e-6


class FleetTicker:
    """Wakes the fleet's control loops on their slots, in deadline order, from one timer.

    Use as an async context manager (it runs one task); `clock(slot)` is a machine's clock."""

    def __init__(self, pacer: Clock, period_s: float, slots: int) -> None:
        if period_s <= 0 or not math.isfinite(period_s):
            raise ValueError(f"period must be a positive number of seconds, not {period_s}")
        if slots < 1:
            raise ValueError(f"a fleet has at least one slot, not {slots}")
        self.pacer = pacer
        self._moves_time = isinstance(pacer, VirtualClock)
        self.period_s = period_s
        self.slots = slots
        #: Timer wake-ups of the ticker, and machine wake-ups it handed out (for reports, tests).
        self.ticks = 0
        self.wakeups = 0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []  # (pacer deadline, order, waiter)
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._sleeping_until: float | None = None  # the deadline the ticker's timer is armed for
        self._rearm = False
        self._task: asyncio.Task[None] | None = None
        #: Real time: the ticker's own timerfd, armed for the earliest deadline (None: task mode).
        self._timer: Timerfd | None = None
        self._armed_for = math.inf
        self._running = False

    def phase_s(self, slot: int) -> float:
        """Where in each period machine `slot` wakes: evenly spread over the period."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} outside 0..{self.slots - 1}")
        return self.period_s * slot / self.slots

    def clock(self, slot: int) -> SlotClock:
        """The clock of the machine in `slot`: give it to that machine's controller."""
        return SlotClock(self, self.phase_s(slot))

    def phase_clock(self, machine: int, every_s: float) -> PhaseClock:
        """A clock for machine `machine`'s periodic work beside its control loop (its telemetry
        sampler), done every `every_s` (rounded to whole periods): its waits end just after
        the machine's own control cycle (the machine is in slot `machine % slots`), in the
        period `machine // slots` of each `every_s`, so that the machines sharing a phase take
        turns. 40 machines at 100 Hz (10 slots) sampled at 10 Hz: each (period, phase) of
        every 100 ms holds at most one sampler, where timers would put several in one gap."""
        periods = max(1, round(every_s / self.period_s))
        slot = machine % self.slots
        turn = (machine // self.slots) % periods
        return PhaseClock(self, self.phase_s(slot) + turn * self.period_s + AFTER_CYCLE_S, periods * self.period_s)

    async def __aenter__(self) -> FleetTicker:
        if isinstance(self.pacer, TimerfdClock):
            self._timer = Timerfd()
            asyncio.get_running_loop().add_reader(self._timer.fd, self._on_timer)
        else:
            self._task = asyncio.create_task(self._run(), name="fleet-ticker")
        self._running = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._running = False
        if self._timer is not None:
            asyncio.get_running_loop().remove_reader(self._timer.fd)
            self._timer.close()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, _, waiter in self._heap:  # nobody is left waiting for a ticker that is gone
            if not waiter.done():
                waiter.cancel()
        self._heap.clear()

    async def wait_until(self, deadline_s: float) -> None:
        """Sleep until `deadline_s` on the pacer's timeline; woken by the ticker in deadline order."""
        if not self._running:
            raise RuntimeError("the fleet ticker is not running: use it as `async with`")
        if deadline_s <= self.pacer.now_s():
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (deadline_s, next(self._order), waiter))
        if self._timer is not None:
            if deadline_s < self._armed_for:
                self._armed_for = deadline_s
                self._timer.arm(deadline_s)
        elif self._sleeping_until is None:
            self._changed.set()
        elif deadline_s < self._sleeping_until and not self._rearm:
            # The timer is armed for a later deadline: re-arm it for this one.
            assert self._task is not None
            self._rearm = True
            self._task.cancel()
        await waiter

    def _on_timer(self) -> None:
        """Real time: the timerfd fired. Wake every machine due, earliest deadline first, and
        arm the timer for the next one."""
        assert self._timer is not None
        if not self._timer.acknowledge():
            return
        self._armed_for = math.inf
        self.ticks += 1
        self._wake_due(self.pacer.now_s())
        if self._heap:
            self._armed_for = self._heap[0][0]
            self._timer.arm(self._armed_for)

    def _wake_due(self, now: float) -> None:
        heap = self._heap
        # Every machine due by now, earliest deadline first: their tasks run in this order.
        while heap and heap[0][0] <= now:
            _, _, waiter = heapq.heappop(heap)
            if not waiter.done():
                waiter.set_result(None)
                self.wakeups += 1

    async def _run(self) -> None:
        heap = self._heap
        pacer = self.pacer
        while True:
            if not heap:
                self._changed.clear()
                await self._changed.wait()
                continue
            self._sleeping_until = heap[0][0]
            try:
                await pacer.tick_until(self._sleeping_until)
            except asyncio.CancelledError:
                if not self._rearm:
                    raise
                # Our own re-arm, not a stop: forget this cancel and wait for the new head.
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()
                continue
            finally:
                self._sleeping_until = None
                self._rearm = False
            self.ticks += 1
            self._wake_due(pacer.now_s())
            if self._moves_time:
                # Let the machines just woken start their cycles before the pacer moves on: a
                # virtual pacer's `tick_until` moves time at once, and they must see the time
                # they woke at. (A real pacer's time moves by itself: no extra step per tick.)
                await asyncio.sleep(0)


class SlotClock:
    """A machine's clock in a fleet: the pacer's time plus a fixed offset, paced by the ticker.

    The control loop puts its deadlines at `start + k × period`, where `start` is whenever its
    start-up happened to end. At the loop's first `tick_until`, this clock moves its own
    timeline forward by less than one period, once, so that the deadline asked for falls on
    the machine's phase in real time; from then on every deadline does. The machine (and its
    simulator, which reads this clock) sees one short first period, then exact ones: no loop
    has to know that it is part of a fleet.
    """

    def __init__(self, ticker: FleetTicker, phase_s: float) -> None:
        self.ticker = ticker
        self.phase_s = phase_s
        #: This clock's time minus the pacer's (≥ 0, < one period; fixed at the first tick).
        self.offset_s = 0.0
        self._aligned = False

    def now_s(self) -> float:
        return self.ticker.pacer.now_s() + self.offset_s

    def _align(self, deadline_s: float) -> None:
        """Shift the timeline so that `deadline_s` lands on the next phase point in real time."""
        period = self.ticker.period_s
        pacer_now = self.ticker.pacer.now_s()
        wanted = deadline_s - self.offset_s  # where the deadline is on the pacer's timeline
        # The last phase point at or before `wanted`, but not before now: the deadline moves
        # earlier in real time by less than a period, i.e. this clock jumps forward, never back.
        slot = math.floor((wanted - self.phase_s) / period) * period + self.phase_s
        if slot < pacer_now:
            slot += period
        if slot <= wanted:  # else a wait shorter than the gap to the next phase point: next time
            self.offset_s += wanted - slot
            self._aligned = True

    async def tick_until(self, deadline_s: float) -> None:
        if not self._aligned:
            self._align(deadline_s)
        await self.ticker.wait_until(deadline_s - self.offset_s)

    async def sleep_until(self, deadline_s: float) -> None:
        """Bystanders (services, displays) wait on the pacer's own timer, not the ticker."""
        await self.ticker.pacer.sleep_until(deadline_s - self.offset_s)


class PhaseClock:
    """The pacer's time, for a machine's bystanders in a fleet; a wait ends at the first point
    at or after its deadline of the lattice `point_s + k × every_s` (FleetTicker.phase_clock),
    woken by the ticker. Deadlines `every_s` apart end exactly `every_s` apart."""

    def __init__(self, ticker: FleetTicker, point_s: float, every_s: float) -> None:
        if every_s <= 0:
            raise ValueError(f"a phase clock's lattice needs a positive spacing, not {every_s}")
        self.ticker = ticker
        self.every_s = every_s
        self.point_s = point_s % every_s

    def now_s(self) -> float:
        return self.ticker.pacer.now_s()

    def lattice_point(self, deadline_s: float) -> float:
        """The first point of this clock's lattice at or after `deadline_s` (within 1 ns)."""
        k = math.ceil((deadline_s - self.point_s) / self.every_s - 1e-9)
        return self.point_s + k * self.every_s

    async def sleep_until(self, deadline_s: float) -> None:
        await self.ticker.wait_until(self.lattice_point(deadline_s))

    async def tick_until(self, deadline_s: float) -> None:
        await self.sleep_until(deadline_s)
