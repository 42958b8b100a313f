"""The FTMS control point against a real ControlLoop on the simulator (in-process core): each
request reaches the loop through `execute`, refusals say why in FTMS terms, and status notifications follow
every change of target or state, whoever made it."""

from __future__ import annotations

import asyncio

import pytest
from ftms_helpers import idle_loop

from controller.core.commands import SetMode, Start
from controller.core.events import Event
from controller.core.loop import ControlLoop
from controller.core.session_state import SessionState
from controller.services.core_link.in_process import InProcessCore
from controller.services.ftms.capabilities import capabilities
from controller.services.ftms.control import FtmsControl, status_for_event
from controller.services.ftms.control_codec import OpCode, ResultCode, StopPause, encode_request

CONTROL = "00"


def _control(loop: ControlLoop | None = None) -> FtmsControl:
    loop = loop or idle_loop()
    return FtmsControl(InProcessCore(loop), capabilities(loop.config))


def _loop(control: FtmsControl) -> ControlLoop:
    """The loop behind the control's core (in-process: the test checks what the command did)."""
    assert isinstance(control.core, InProcessCore)
    return control.core.loop


def _answer(control: FtmsControl, hex_packet: str) -> str:
    response = asyncio.run(control.handle(bytes.fromhex(hex_packet)))
    assert response is not None
    assert response[:2] == bytes([0x80, bytes.fromhex(hex_packet)[0]])
    return ResultCode(response[2]).name


def _drain(control: FtmsControl) -> list[str]:
    """The status notifications waiting for the app, as hex (and empties the queue)."""
    out = []
    while control.statuses:
        out.append(control.statuses.popleft().hex())
    return out


@pytest.mark.parametrize("hex_packet", ["01", "05fa00", "025203", "0432", "07", "0802"])
def test_every_request_before_request_control_is_not_permitted_and_changes_nothing(hex_packet: str) -> None:
    control = _control()
    assert _answer(control, hex_packet) == "CONTROL_NOT_PERMITTED"
    assert _loop(control).mode.name == "free"
    assert _loop(control).session.state == SessionState.READY


@pytest.mark.parametrize("hex_packet", [
    "03fa00",  # set target inclination: a non-motorised treadmill is flat
    "068c",  # set target heart rate
    "0c10270000",  # set targeted distance
    "11000000000000",  # indoor bike simulation
    "42",  # not an FTMS op code at all
])
def test_op_codes_the_machine_does_not_offer_are_not_supported(hex_packet: str) -> None:
    control = _control()
    assert _answer(control, CONTROL) == "SUCCESS"
    assert _answer(control, hex_packet) == "OP_CODE_NOT_SUPPORTED"
    assert _loop(control).mode.name == "free"


@pytest.mark.parametrize("hex_packet", [
    "05fa",  # power with one byte
    "050000",  # 0 W: below the advertised 10 W
    "05dc07",  # 2012 W: above erg_max_w 1500 W
    "0538ff",  # -200 W
    "020100",  # 0.01 km/h: below the 0.72 km/h speed cap minimum
    "02e80f",  # 40.72 km/h: above the 32.4 km/h over-speed limit
    "046900",  # level 10.5
    "04f6ff",  # level -1.0
    "0803",  # stop-or-pause with neither stop nor pause
])
def test_parameters_of_wrong_size_or_outside_the_advertised_range_are_invalid(hex_packet: str) -> None:
    control = _control()
    _answer(control, CONTROL)
    assert _answer(control, hex_packet) == "INVALID_PARAMETER"
    assert _loop(control).mode.name == "free"
    assert _drain(control) == []


def test_an_empty_write_gets_no_answer() -> None:
    assert asyncio.run(_control().handle(b"")) is None


def test_targets_select_the_matching_modes() -> None:
    control = _control()
    loop = _loop(control)
    _answer(control, CONTROL)
    assert _answer(control, encode_request(OpCode.SET_TARGET_POWER, 250).hex()) == "SUCCESS"
    assert (loop.mode.name, loop.mode.target) == ("erg", 250.0)
    assert _answer(control, encode_request(OpCode.SET_TARGET_RESISTANCE_LEVEL, 5.5).hex()) == "SUCCESS"
    assert (loop.mode.name, loop.mode.target) == ("level", 5.5)
    assert _answer(control, encode_request(OpCode.SET_TARGET_SPEED, 9.0).hex()) == "SUCCESS"
    assert loop.mode.name == "speed-cap"
    assert loop.mode.target == pytest.approx(2.5)  # 9.0 km/h


def test_start_pause_resume_stop_drive_the_session_and_repeat_harmlessly() -> None:
    control = _control()
    loop = _loop(control)
    _answer(control, CONTROL)
    assert _answer(control, "07") == "SUCCESS"
    assert loop.session.state == SessionState.RUNNING
    assert _answer(control, "07") == "SUCCESS"  # already running
    assert _answer(control, f"08{StopPause.PAUSE:02x}") == "SUCCESS"
    assert loop.session.state == SessionState.PAUSED
    assert _answer(control, "0802") == "SUCCESS"  # already paused
    assert _answer(control, "07") == "SUCCESS"
    assert loop.session.state == SessionState.RUNNING
    assert _answer(control, "0801") == "SUCCESS"
    assert loop.session.state == SessionState.FINISHED
    assert _answer(control, "0801") == "SUCCESS"  # already stopped
    assert _answer(control, "07") == "SUCCESS"  # a new session
    assert loop.session.state == SessionState.RUNNING


def test_a_request_the_controller_refuses_is_operation_failed() -> None:
    control = _control()
    loop = _loop(control)
    _answer(control, CONTROL)
    loop.execute(Start())
    _answer(control, "0801")
    # After stop the loop refuses new targets until a new session starts: FTMS "operation failed".
    assert _answer(control, "05fa00") == "OPERATION_FAILED"
    assert loop.mode.name == "free"


def test_the_safety_rules_still_apply_a_latched_fault_refuses_start() -> None:
    control = _control()
    loop = _loop(control)
    _answer(control, CONTROL)
    loop.safety.record("safety_key", 0.0, "test: safety key pulled")
    assert loop.session.state != SessionState.RUNNING
    assert _answer(control, "07") == "OPERATION_FAILED"
    assert loop.session.state != SessionState.RUNNING


def test_reset_frees_the_brake_reports_reset_and_releases_control() -> None:
    control = _control()
    loop = _loop(control)
    _answer(control, CONTROL)
    _answer(control, "05fa00")
    _drain(control)
    assert _answer(control, "01") == "SUCCESS"
    assert loop.mode.name == "free"
    assert _drain(control) == ["01"]
    assert _answer(control, "05fa00") == "CONTROL_NOT_PERMITTED"


def test_status_follows_the_loops_events_whoever_changed_things() -> None:
    control = _control()
    loop = _loop(control)
    sub = loop.events.subscribe()
    # The web console or MQTT changes things: the app hears about it too.
    loop.execute(SetMode(mode="erg", target=300))
    loop.execute(SetMode(mode="level", target=4.0))
    loop.execute(SetMode(mode="speed-cap", target=2.5))
    loop.execute(SetMode(mode="free"))
    loop.execute(Start())
    while not sub.queue.empty():
        control.on_event(sub.queue.get_nowait())
    # 300 W = 0x012C → 08 2c 01; level 4.0 → 40 = 0x28 → 07 28; 2.5 m/s = 9.00 km/h → 900 = 0x0384 → 05 84 03;
    # free mode has no FTMS target: nothing; session running → 04.
    assert _drain(control) == ["082c01", "0728", "058403", "04"]


def test_pause_and_stop_by_safety_key_are_reported_as_such() -> None:
    paused = Event("session", 0.0, {"state": "paused"})
    finished = Event("session", 0.0, {"state": "finished"})
    assert status_for_event(paused) == bytes([0x02, 0x02])
    assert status_for_event(finished) == bytes([0x02, 0x01])
    assert status_for_event(paused, safety_key_active=True) == bytes([0x03])
    assert status_for_event(Event("segment", 0.0, {"event": "start"})) is None


def test_reset_after_stop_releases_control_without_touching_the_finished_session() -> None:
    control = _control()
    loop = _loop(control)
    _answer(control, CONTROL)
    _answer(control, "07")
    _answer(control, "0801")
    summary_before = loop.session.summary().model_dump()
    assert _answer(control, "01") == "SUCCESS"
    assert loop.session.state == SessionState.FINISHED
    assert loop.session.summary().model_dump() == summary_before
    assert not control.controlled
