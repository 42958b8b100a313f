"""A session's personal bests, per direction, from its 1 Hz records (and its segments, for
the sled's mass). The same tracker runs on the machine, record by record, so a new best is
seen the second it happens, and on the hub over the stored records: both give the same
numbers.

Keys (docs/levels.md), each for `forward` and `backward`:
- `{dir}_{D}m_s` for D = 100, 200, 400, 1000: the shortest time over D metres run without
  turning (interpolated within the second: the fastest stretch may start mid-record);
- `{dir}_power_{N}s_w` for N = 10, 60, 300: the best mean power over N consecutive seconds
  in that direction;
- `{dir}_sled_10m_kg`: the heaviest sled (segment mode `sled`, its target in kg) moved over
  10 m without turning;
- `backward_walk_m`: the longest backward stretch at walking pace (every second at most
  `WALK_MAX_MPS`).

A second belongs to a direction when the belt moved that way and (almost) not the other:
less than `TURN_SHARE` of its movement the other way. A second that does not belongs to no
direction and ends every stretch: bests are about running one way without turning.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from controller.core.summary import SegmentSummary, SessionRecord

Direction = Literal["forward", "backward"]
DIRECTIONS: tuple[Direction, ...] = ("forward", "backward")
DISTANCES_M = (100, 200, 400, 1000)
POWER_WINDOWS_S = (10, 60, 300)
SLED_DISTANCE_M = 10.0
#: Backward faster than this is running, not walking (backward walking on straps is ~1–1.5 m/s).
WALK_MAX_MPS = 2.0
#: Movement the other way within a second, as a share of the main way, still counted as one way
#: (stride jitter at the turn of a stride, not a turn).
TURN_SHARE = 0.1


def distance_key(direction: Direction, metres: int) -> str:
    return f"{direction}_{metres}m_s"


def power_key(direction: Direction, seconds: int) -> str:
    return f"{direction}_power_{seconds}s_w"


def sled_key(direction: Direction) -> str:
    return f"{direction}_sled_10m_kg"


BACKWARD_WALK_KEY = "backward_walk_m"


def _interpolate_t(cums: Sequence[float], times: Sequence[float], cum: float) -> float:
    """Time at which the cumulative distance reached `cum` (piecewise linear)."""
    i = bisect.bisect_left(cums, cum)
    if i == 0:
        return times[0]
    c0, c1 = cums[i - 1], cums[i]
    t0, t1 = times[i - 1], times[i]
    return t0 + (t1 - t0) * (cum - c0) / (c1 - c0) if c1 > c0 else t1


@dataclass
class _Stretch:
    """One way, without turning: time and distance points, power per second."""

    times: list[float] = field(default_factory=list)
    cums: list[float] = field(default_factory=list)
    powers: list[float] = field(default_factory=list)
    power_sums: list[float] = field(default_factory=lambda: [0.0])
    #: per distance, index of the first start point whose end is not yet reached
    pending: dict[int, int] = field(default_factory=dict)
    sled_kg: float | None = None
    sled_m: float = 0.0
    walk_m: float = 0.0


class BestsTracker:
    """Feed records in order (`add`); `bests` holds the session's bests so far."""

    def __init__(self, segments: Sequence[SegmentSummary] = ()) -> None:
        self.segments = list(segments)
        self.bests: dict[str, float] = {}
        self._stretch: dict[Direction, _Stretch | None] = {"forward": None, "backward": None}
        self._last: SessionRecord | None = None

    def _note(self, key: str, value: float, lower: bool) -> bool:
        old = self.bests.get(key)
        if old is None or (value < old if lower else value > old):
            self.bests[key] = round(value, 3)
            return True
        return False

    def sled_kg(self, record: SessionRecord) -> float | None:
        """The sled's mass during this record (None: not a sled segment)."""
        segment: SegmentSummary | None = None
        if record.segment is not None:
            segment = next((s for s in self.segments if s.index == record.segment), None)
        elif len(self.segments) == 1:
            segment = self.segments[0]  # a session without a workout: one lap, its mode
        if segment is None or segment.mode != "sled" or segment.target is None:
            return None
        return segment.target

    def add(self, record: SessionRecord, sled_kg: float | None = None) -> list[str]:
        """Account one record; returns the keys whose best improved with it. `sled_kg`
        overrides the segments' sled mass (the machine knows its current mode)."""
        last = self._last
        self._last = record
        t0, fwd0, back0 = (last.t_s, last.forward_m, last.backward_m) if last else (0.0, 0.0, 0.0)
        moved: dict[Direction, float] = {"forward": record.forward_m - fwd0, "backward": record.backward_m - back0}
        mass = sled_kg if sled_kg is not None else self.sled_kg(record)
        improved: list[str] = []
        pairs: tuple[tuple[Direction, Direction], ...] = (("forward", "backward"), ("backward", "forward"))
        for direction, other in pairs:
            here = moved[direction]
            if here <= 0 or moved[other] > TURN_SHARE * here or record.t_s <= t0:
                self._stretch[direction] = None
                continue
            stretch = self._stretch[direction]
            if stretch is None:
                stretch = _Stretch(times=[t0], cums=[fwd0 if direction == "forward" else back0])
                self._stretch[direction] = stretch
            improved += self._extend(direction, stretch, record, here, mass)
        return improved

    def _extend(self, direction: Direction, s: _Stretch, record: SessionRecord, moved_m: float,
                mass: float | None) -> list[str]:
        improved: list[str] = []
        cum = s.cums[-1] + moved_m
        s.times.append(record.t_s)
        s.cums.append(cum)
        start_cum = s.cums[0]
        for metres in DISTANCES_M:
            key = distance_key(direction, metres)
            best: float | None = None
            if cum - start_cum >= metres:  # ending at this record, started mid-record
                best = record.t_s - _interpolate_t(s.cums, s.times, cum - metres)
            # starting at an earlier record, ending within this one
            p = s.pending.get(metres, 0)
            while p < len(s.cums) - 1 and s.cums[p] + metres <= cum:
                duration = _interpolate_t(s.cums, s.times, s.cums[p] + metres) - s.times[p]
                best = duration if best is None else min(best, duration)
                p += 1
            s.pending[metres] = p
            if best is not None and best > 0 and self._note(key, best, lower=True):
                improved.append(key)
        s.powers.append(record.power_w)
        s.power_sums.append(s.power_sums[-1] + record.power_w)
        n = len(s.powers)
        for seconds in POWER_WINDOWS_S:
            if n >= seconds and self._note(power_key(direction, seconds),
                                           (s.power_sums[n] - s.power_sums[n - seconds]) / seconds, lower=False):
                improved.append(power_key(direction, seconds))
        if mass is not None and mass == s.sled_kg:
            s.sled_m += moved_m
        else:
            s.sled_kg, s.sled_m = mass, (moved_m if mass is not None else 0.0)
        if s.sled_kg is not None and s.sled_m >= SLED_DISTANCE_M and self._note(sled_key(direction), s.sled_kg,
                                                                                 lower=False):
            improved.append(sled_key(direction))
        if direction == "backward":
            s.walk_m = s.walk_m + moved_m if abs(record.speed_mps) <= WALK_MAX_MPS else 0.0
            if s.walk_m > 0 and self._note(BACKWARD_WALK_KEY, s.walk_m, lower=False):
                improved.append(BACKWARD_WALK_KEY)
        return improved


def session_bests(records: Iterable[SessionRecord], segments: Sequence[SegmentSummary] = ()) -> dict[str, float]:
    """Every best of one session (keys above), from its records in time order."""
    tracker = BestsTracker(segments)
    for record in records:
        tracker.add(record)
    return dict(sorted(tracker.bests.items()))
