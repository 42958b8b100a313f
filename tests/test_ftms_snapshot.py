"""The controller's Snapshot as Treadmill Data: signs, absent heart rate, and clamping so a
long session never breaks the packet."""

from __future__ import annotations

import dataclasses

import pytest
from ftms_helpers import idle_loop

from controller.core.loop import Snapshot
from controller.services.ftms.codec import decode_treadmill_data, encode_treadmill_data
from controller.services.ftms.snapshot_data import treadmill_data


async def _snapshot(runner: str, seconds: float = 6.0) -> Snapshot:
    loop = idle_loop(runner)
    async with loop.board:
        await loop.run(seconds)
    assert loop.latest is not None
    return loop.latest


async def test_backward_running_sends_a_positive_speed_and_a_negative_force() -> None:
    snap = await _snapshot("steady:-2.0")
    assert snap.motion.speed_mps < -1.5
    record = treadmill_data(snap, 75.0)
    assert record.instantaneous_speed_kmh == pytest.approx(abs(snap.motion.speed_mps) * 3.6, abs=0.01)
    assert record.force_on_belt_n is not None and record.force_on_belt_n < 0
    assert record.power_output_w is not None and record.power_output_w > 0
    assert decode_treadmill_data(encode_treadmill_data(record)) == record


async def test_no_chest_strap_signal_leaves_the_heart_rate_field_out() -> None:
    snap = await _snapshot("steady:3.0")
    no_signal = dataclasses.replace(snap, sample=dataclasses.replace(snap.sample, heart_rate_bpm=None))
    record = treadmill_data(no_signal, 75.0)
    assert record.heart_rate_bpm is None
    assert int(record.flags) == 0x1686
    assert int(treadmill_data(snap, 75.0).flags) == 0x1786


async def test_a_marathon_session_is_clamped_into_the_fields_instead_of_failing() -> None:
    snap = await _snapshot("steady:3.0", 2.0)
    totals = dataclasses.replace(snap.totals, elapsed_s=100_000.0, forward_m=20_000_000.0,
                                 forward_work_j=1e10)
    record = treadmill_data(dataclasses.replace(snap, totals=totals), 75.0)
    assert record.elapsed_time_s == 0xFFFF
    assert record.total_distance_m == 0xFFFFFF
    assert record.total_energy_kcal == 0xFFFF
    encode_treadmill_data(record)  # does not raise
