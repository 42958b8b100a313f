"""Personal bests from 1 Hz records: per direction, interpolated within the second, and
equal to a brute-force reading of the same records."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.summary import SegmentSummary, SessionRecord
from controller.progression.bests import (
    BACKWARD_WALK_KEY,
    BestsTracker,
    distance_key,
    power_key,
    session_bests,
    sled_key,
)
from controller.progression.records import PersonalBest, merge_bests, new_personal_bests


def records_from(seconds: Sequence[tuple[float, float]], segment: int | None = None) -> list[SessionRecord]:
    """One record per second from (signed speed m/s, power W) pairs."""
    out, fwd, back = [], 0.0, 0.0
    for i, (speed, power) in enumerate(seconds, start=1):
        if speed >= 0:
            fwd += speed
        else:
            back -= speed
        out.append(SessionRecord(t_s=float(i), speed_mps=speed, distance_m=fwd + back, forward_m=fwd,
                                 backward_m=back, power_w=power, force_n=0.0, segment=segment))
    return out


def test_steady_forward_run_gives_distance_over_speed_and_the_power_held() -> None:
    bests = session_bests(records_from([(4.0, 300.0)] * 400))
    assert bests[distance_key("forward", 100)] == pytest.approx(25.0)
    assert bests[distance_key("forward", 1000)] == pytest.approx(250.0)
    assert bests[power_key("forward", 300)] == pytest.approx(300.0)
    assert not any(k.startswith("backward") for k in bests)


def test_forward_and_backward_are_kept_apart() -> None:
    seconds = [(5.0, 400.0)] * 60 + [(-2.5, 200.0)] * 60 + [(-1.2, 80.0)] * 50
    bests = session_bests(records_from(seconds))
    assert bests[distance_key("forward", 200)] == pytest.approx(40.0)
    assert bests[distance_key("backward", 100)] == pytest.approx(40.0)
    assert bests[power_key("forward", 60)] == pytest.approx(400.0)
    assert bests[power_key("backward", 60)] == pytest.approx((200 * 60) / 60)
    # the walk: only the 1.2 m/s part (2.5 m/s backward is running)
    assert bests[BACKWARD_WALK_KEY] == pytest.approx(60.0)


def test_a_turn_ends_a_stretch() -> None:
    # 80 m forward, 1 s back, 80 m forward: no 100 m forward without turning
    bests = session_bests(records_from([(4.0, 1.0)] * 20 + [(-1.0, 1.0)] + [(4.0, 1.0)] * 20))
    assert distance_key("forward", 100) not in bests


def test_fastest_stretch_may_start_within_a_second() -> None:
    # 10 s at 2 m/s, then 30 s at 5 m/s: the best 100 m is the 20 s at 5 m/s
    bests = session_bests(records_from([(2.0, 0.0)] * 10 + [(5.0, 0.0)] * 30))
    assert bests[distance_key("forward", 100)] == pytest.approx(20.0)


def test_heaviest_sled_over_10_m_from_the_segments() -> None:
    segments = [SegmentSummary(index=0, mode="sled", target=80.0), SegmentSummary(index=1, mode="sled", target=140.0),
                SegmentSummary(index=2, mode="free")]
    records = records_from([(1.0, 0.0)] * 12, segment=0)
    heavy = records_from([(1.0, 0.0)] * 21, segment=1)[12:]  # 9 m only at 140 kg: does not count
    tail = records_from([(1.0, 0.0)] * 40, segment=2)[21:]
    tracker = BestsTracker(segments)
    for r in [*records, *heavy, *tail]:
        tracker.add(r)
    assert tracker.bests[sled_key("forward")] == 80.0


def brute_force_best_time(records: Sequence[SessionRecord], metres: float) -> float | None:
    """Shortest time over `metres` forward without turning, on a 0.01 s grid (slow and obvious)."""
    best = None
    stretch: list[tuple[float, float]] = []
    prev = (0.0, 0.0)
    for r in records:
        if r.speed_mps > 0:
            if not stretch:
                stretch = [prev]
            stretch.append((r.t_s, r.forward_m))
            t0 = stretch[0][0]
            grid = [t0 + k * 0.01 for k in range(int((r.t_s - t0) / 0.01) + 1)]

            def cum(t: float, pts: list[tuple[float, float]] = stretch) -> float:
                for (ta, ca), (tb, cb) in itertools.pairwise(pts):
                    if ta <= t <= tb:
                        return ca + (cb - ca) * (t - ta) / (tb - ta)
                return pts[-1][1]

            cums = [cum(t) for t in grid]
            j = 0
            for i, t in enumerate(grid):
                while j < len(grid) and cums[j] - cums[i] < metres - 1e-9:
                    j += 1
                if j < len(grid):
                    d = grid[j] - t
                    best = d if best is None else min(best, d)
        else:
            stretch = []
        prev = (r.t_s, r.forward_m)
    return best


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0.5, max_value=8.0), min_size=5, max_size=40))
def test_best_time_equals_a_brute_force_reading_of_the_records(speeds: list[float]) -> None:
    records = records_from([(v, 0.0) for v in speeds])
    got = session_bests(records).get(distance_key("forward", 100))
    want = brute_force_best_time(records, 100.0)
    if want is None:
        assert got is None
    else:
        assert got == pytest.approx(want, abs=0.02)


def test_new_personal_bests_compare_times_down_and_the_rest_up() -> None:
    previous = {"forward_200m_s": 40.0, "forward_power_10s_w": 500.0}
    session = {"forward_200m_s": 41.0, "forward_power_10s_w": 520.0, "backward_100m_s": 30.0}
    assert new_personal_bests(previous, session) == [
        PersonalBest("backward_100m_s", 30.0, None), PersonalBest("forward_power_10s_w", 520.0, 500.0)]
    assert merge_bests(previous, session) == {"forward_200m_s": 40.0, "forward_power_10s_w": 520.0,
                                              "backward_100m_s": 30.0}


def test_tracker_reports_the_record_at_which_a_best_improved() -> None:
    tracker = BestsTracker()
    improved_at = []
    for r in records_from([(5.0, 100.0)] * 25):
        if distance_key("forward", 100) in tracker.add(r):
            improved_at.append(r.t_s)
    # first reached at 20 s; not beaten later at a steady pace
    assert improved_at == [20.0]
