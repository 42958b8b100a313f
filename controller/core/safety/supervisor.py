"""The safety supervisor: fault detection and fault responses, as decisions the loop carries out.

The supervisor never talks to the board and never builds a board command. The control loop
does the I/O and tells it what happened, at fixed points of every cycle:
`exchange_failed` or `received` (link supervision, sensor plausibility, a restarted board, the
coil following its setpoint) → `observe` (status bits, watchdog trips, over-speed) →
`request` (what the brake is asked for, given the active faults) → the setpoint guard, which
makes the command. After a lost link the loop reconnects and asks `rearm_plan` what the board
needs. A lost link is a fault with a response, not a crash, because an athlete may be on the belt.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from controller.core.commands import Pause, Stop
from controller.core.guard import BrakeRequest
from controller.core.safety.coil import CoilFollowMonitor, follow_window_s
from controller.core.safety.faults import (
    POLICIES,
    BrakeAction,
    Fault,
    FaultLog,
    FaultRecord,
    SessionAction,
)
from controller.core.safety.link import LinkSupervisor
from controller.core.safety.plausibility import (
    board_restarted,
    check_current,
    check_encoder,
    lost_control_register,
)
from controller.core.session_state import SessionState
from drivers.errors import BoardError, ModbusExceptionReply
from drivers.registers import Status
from drivers.sample import BoardCommand, BoardSample

if TYPE_CHECKING:
    from controller.core.estimator import Motion
    from controller.core.loop import ControlLoop

log = logging.getLogger(__name__)

#: Status bits that are machine faults, and their fault codes.
STATUS_FAULTS: dict[Status, Fault] = {
    Status.ESTOP: Fault.ESTOP,
    Status.SAFETY_KEY_REMOVED: Fault.SAFETY_KEY,
    Status.BRAKE_FAULT: Fault.BRAKE_COIL,
    Status.OVER_TEMPERATURE: Fault.OVER_TEMPERATURE,
    Status.UNDER_VOLTAGE: Fault.UNDER_VOLTAGE,
}
#: Status bits under which the board, not the controller, decides the coil current: a trip or an
#: e-stop (or the safety key) applies the safe current, a coil fault carries none.
BOARD_FORCES_COIL = Status.WATCHDOG_TRIPPED | Status.ESTOP | Status.SAFETY_KEY_REMOVED | Status.BRAKE_FAULT
#: Over-speed ends this far under its limit, so a runner at the limit does not toggle it.
OVERSPEED_HYSTERESIS_MPS = 0.3
#: A sensor fault holds the last setpoint this long, then the brake ramps to the safe current.
SENSOR_HOLD_S = 0.5
#: While the brake is inhibited, look for a technician's clear in the log this often.
LOG_POLL_S = 1.0


# The same bits as plain ints for the per-cycle checks (enum.Flag arithmetic costs microseconds).
_BOARD_FORCES_COIL_BITS = int(BOARD_FORCES_COIL)
_BRAKE_ENABLED_BITS = int(Status.BRAKE_ENABLED)
_WATCHDOG_TRIPPED_BITS = int(Status.WATCHDOG_TRIPPED)
_STATUS_FAULT_BITS = tuple((int(flag), flag, code) for flag, code in STATUS_FAULTS.items())


def board_in_charge(sample: BoardSample) -> bool:
    """The board decides what the coil carries (trip, e-stop, coil fault, or its brake is off)."""
    bits = int(sample.status)
    return bool(bits & _BOARD_FORCES_COIL_BITS) or not bits & _BRAKE_ENABLED_BITS


class Verdict(enum.Enum):
    """What the loop does with a sample the board answered with."""

    USE = "use"  # a good sample: estimate, run the mode
    DISCARD = "discard"  # implausible: not counted; the setpoint is held
    REARM = "rearm"  # the board restarted under us: re-arm it before going on


@dataclass(frozen=True, slots=True)
class RearmPlan:
    """What a board found again needs: settings always; the guard restarts from the measured coil
    when the board has been in charge of it (a trip holds the safe current, a reboot has it off)."""

    probe: BoardSample
    rebooted: bool
    tripped: bool


class SafetySupervisor:
    """Owns link supervision and the fault responses of one control loop."""

    def __init__(self, loop: ControlLoop) -> None:
        self.loop = loop
        safety = loop.config.safety
        self.safe_brake_ma = safety.safe_brake_ma
        self.link = LinkSupervisor(safety.link_loss_s, loop.period_s,
                                   max(loop.period_s, safety.reconnect_backoff_max_s))
        self.fault_log: FaultLog | None = None
        #: Every fault of this run, oldest first (the `--json` report's `faults`).
        self.records: list[FaultRecord] = []
        self.active: dict[Fault, int] = {}  # active fault -> index of its record in `records`
        self.brake_inhibited = False  # a latched coil fault: brake disabled until cleared
        self.last_good: BoardSample | None = None
        self.boost_ma = 0.0
        self._reset_pending = False
        self._brake_was_enabled = False
        self._started_s: float | None = None
        self._blind_since_s = 0.0
        self._blind_too_long = False
        self._log_stamp = (0, 0)
        self._next_log_poll_s = 0.0
        self.coil = CoilFollowMonitor(
            safety.coil_tolerance_ma,
            follow_window_s(safety.coil_lag_s, safety.max_current_ma, safety.board_ramp_ma_per_s),
            hold_s=3.0 * safety.coil_lag_s)

    # --- the fault record ---------------------------------------------------------------
    def attach_log(self, fault_log: FaultLog) -> None:
        """Log faults to the data directory; a latched coil fault there disables the brake."""
        self.fault_log = fault_log
        inhibiting = fault_log.brake_inhibited()
        if inhibiting:
            self.brake_inhibited = True
            self._log_stamp = fault_log.stamp()
            # Shown in this run's report too (not logged again: it is already in the log).
            self.records.append(FaultRecord(
                Fault.BRAKE_COIL, self.loop.clock.now_s(),
                f"latched {inhibiting[-1].get('code')} since {inhibiting[-1].get('at')} and not cleared: "
                f"brake disabled for this run", self.state(), from_log=True))
            log.error("brake disabled: latched %s from %s; a technician must check the coil and run "
                      "`millctl faults clear`", inhibiting[-1].get("code"), inhibiting[-1].get("at"))

    def state(self, sample: BoardSample | None = None) -> dict[str, Any]:
        """The machine state that goes with a fault record."""
        loop = self.loop
        latest = loop.latest
        sample = sample or (latest.sample if latest else None) or self.last_good
        totals = loop.session.totals
        state: dict[str, Any] = {
            "session_state": loop.session.state.value, "mode": loop.mode.name, "target": loop.mode.target,
            "speed_mps": round(latest.motion.speed_mps, 3) if latest else 0.0,
            "setpoint_ma": loop._command.brake_setpoint_ma, "brake_enabled": loop._command.brake_enable,
            "distance_m": round(totals.distance_m, 3), "elapsed_s": round(totals.elapsed_s, 3),
        }
        if sample is not None:
            state.update(coil_ma=sample.brake_current_ma, status=sample.status_names(),
                         board_temp_c=sample.board_temp_c, supply_mv=sample.supply_mv,
                         board_fault_code=sample.fault_code)
        return state

    def record(self, code: Fault | str, now_s: float, cause: str, sample: BoardSample | None = None,
               active: bool = True) -> FaultRecord:
        """Record a fault: `--json` `faults`, the log, the warning log, and its session action."""
        fault = Fault(code)
        entry = FaultRecord(
            fault, now_s, cause, self.state(sample), active=active,
            board_fault_code=sample.fault_code if sample is not None and sample.fault_code else None,
            run_s=None if self._started_s is None else round(now_s - self._started_s, 3))
        self.records.append(entry)
        if active:
            self.active[fault] = len(self.records) - 1
        if self.fault_log is not None:
            self.fault_log.append(entry.as_dict())
        p = POLICIES[fault]
        log.warning("fault %s at %.3f s: %s; response: %s", fault.value, now_s, cause, p.response)
        if p.inhibits_brake:
            self.brake_inhibited = True
        self._session_action(p.session)
        return entry

    def active_records(self) -> list[FaultRecord]:
        """The faults active now, oldest first."""
        return [self.records[index] for index in sorted(self.active.values())]

    def _end(self, code: Fault, now_s: float, outage_s: float | None = None) -> None:
        index = self.active.pop(code, None)
        if index is not None:
            self.records[index] = self.records[index].ended(now_s, outage_s)

    def _session_action(self, action: SessionAction) -> None:
        loop = self.loop
        if action == SessionAction.PAUSE and loop.session.state == SessionState.RUNNING:
            loop.execute(Pause())
        elif action == SessionAction.STOP and loop.session.state in (SessionState.RUNNING, SessionState.PAUSED):
            loop.execute(Stop())

    def refusal(self, command: str) -> str | None:
        """Why `start`/`resume` must wait, or None: not while a fault holds the belt."""
        if command not in ("start", "resume"):
            return None
        holding = [c.value for c in self.active
                   if POLICIES[c].session in (SessionAction.PAUSE, SessionAction.STOP)]
        if holding:
            return (f"cannot {command} while fault(s) {', '.join(holding)} are active; "
                    f"resolve the cause first (see `millctl faults`)")
        return None

    # --- per cycle ------------------------------------------------------------------------
    def start(self, sample: BoardSample, now_s: float) -> None:
        """After activation: the first sample is the reference, its status is checked."""
        self.last_good = sample
        self.link.succeeded(now_s)
        self._brake_was_enabled = False
        self._started_s = now_s
        self.coil.reset()

    def exchange_failed(self, exc: BoardError, now_s: float) -> None:
        """An exchange (or a re-arm) raised: count it, and declare the link lost when it is."""
        loop = self.loop
        loop.link_errors += 1
        if loop.link_errors == 1 or loop.link_errors % 100 == 0:
            log.warning("board exchange failed (%d so far): %s", loop.link_errors, exc)
        if isinstance(exc, ModbusExceptionReply) and Fault.BOARD_EXCEPTION not in self.active:
            self.record(Fault.BOARD_EXCEPTION, now_s, str(exc))
        if self.link.failed(now_s):
            self.record(Fault.LINK_LOST, now_s, f"no answer from {loop.board.url} for "
                        f"{now_s - (self.link.last_ok_s or now_s):.3f} s: {exc}")
            self.coil.reset()
            if loop.latest is not None:
                loop.latest = replace(loop.latest, t_s=now_s, link_ok=False)

    def reconnect_failed(self, exc: BoardError, now_s: float) -> None:
        """A reconnection attempt failed: back off (quietly after the first few)."""
        self.link.attempt_failed(now_s)
        if self.link.attempts in (1, 10) or self.link.attempts % 100 == 0:
            log.warning("reconnection attempt %d to %s failed: %s", self.link.attempts, self.loop.board.url, exc)

    def reconnected(self, now_s: float) -> None:
        """The board answers again and has been re-armed: the outage is over."""
        outage = self.link.succeeded(now_s)
        self._end(Fault.LINK_LOST, now_s, outage_s=outage or 0.0)
        self._end(Fault.BOARD_EXCEPTION, now_s)
        log.warning("link to %s back after %.3f s; board re-armed", self.loop.board.url, outage or 0.0)

    def rearm_plan(self, probe: BoardSample, now_s: float) -> RearmPlan:
        """A board found again (after a lost link, or restarted under us): what happened to it.

        Records a reboot or a trip, restarts the motion history after a reboot so no distance is
        invented, and asks for the trip to be cleared with the next command."""
        loop = self.loop
        rebooted = ((self.last_good is not None and board_restarted(self.last_good, probe))
                    or lost_control_register(probe, self._brake_was_enabled))
        tripped = bool(probe.status & Status.WATCHDOG_TRIPPED)
        if rebooted:
            self.record(Fault.BOARD_REBOOT, now_s, "board clock or control register back at power-on values "
                        "(the board restarted): check its supply and reset line", probe, active=False)
            loop.estimator.reset()
            loop.estimator.update(probe)
        if tripped:
            self.record(Fault.WATCHDOG_TRIPPED, now_s, f"no command reached the board for more than "
                        f"{loop.config.watchdog_ms} ms", probe, active=False)
        self._reset_pending = rebooted or tripped
        # What the board really does now: a failure from here on is a reboot only if it loses this.
        self._brake_was_enabled = bool(probe.status & Status.BRAKE_ENABLED)
        self.last_good = probe
        self.coil.reset()
        return RearmPlan(probe, rebooted, tripped)

    def received(self, sample: BoardSample, command: BoardCommand, now_s: float) -> Verdict:
        """The board answered `command` with `sample`: is the sample usable?"""
        self.link.succeeded(now_s)
        self._end(Fault.BOARD_EXCEPTION, now_s)
        self._brake_was_enabled = command.brake_enable
        previous = self.last_good
        issue = check_current(sample)
        if issue is None and previous is not None:
            if board_restarted(previous, sample):
                return Verdict.REARM
            issue = check_encoder(previous, sample, self.loop.config.encoder.metres_per_count)
        if issue is not None:
            code = Fault(issue.code)
            if code not in self.active:
                self.record(code, now_s, issue.cause, sample)
                self._blind_since_s = now_s
            elif now_s - self._blind_since_s >= SENSOR_HOLD_S:
                # Blind for too long to keep braking by the last estimate: ramp to the safe current.
                self._blind_too_long = True
            if code == Fault.ENCODER_JUMP:
                # Start speed and distance afresh from this count: the jump is never counted.
                self.loop.estimator.reset()
                self.loop.estimator.update(sample)
                self.last_good = sample
            self.coil.reset()  # the current reading cannot be trusted either way
            return Verdict.DISCARD
        self._end(Fault.ENCODER_JUMP, now_s)
        self._end(Fault.CURRENT_IMPLAUSIBLE, now_s)
        self._blind_too_long = False
        self.last_good = sample
        self._check_coil(sample, command, now_s)
        return Verdict.USE

    def _check_coil(self, sample: BoardSample, command: BoardCommand, now_s: float) -> None:
        if not command.brake_enable or board_in_charge(sample):
            self.coil.reset()
            return
        cause = self.coil.observe(now_s, command.brake_setpoint_ma, sample.brake_current_ma)
        if cause is not None and Fault.COIL_NOT_FOLLOWING not in self.active:
            self.record(Fault.COIL_NOT_FOLLOWING, now_s, cause, sample)
            self.coil.reset()

    def observe(self, sample: BoardSample, motion: Motion, now_s: float) -> None:
        """Machine faults from the status register, watchdog trips and over-speed."""
        bits = int(sample.status)
        active = self.active
        for flag_bits, flag, code in _STATUS_FAULT_BITS:
            if flag_bits & bits:
                if code not in active:
                    self.record(code, now_s, f"status bit {flag.name} set by the board", sample)
                else:
                    # Keep the session held while the condition lasts (e.g. pressed at start-up).
                    self._session_action(POLICIES[code].session)
            elif code in active:
                self._end(code, now_s)
        if bits & _WATCHDOG_TRIPPED_BITS and not self._reset_pending:
            self.record(Fault.WATCHDOG_TRIPPED, now_s, f"board reports its watchdog tripped (no command for "
                        f"{self.loop.config.watchdog_ms} ms): the loop stalled", sample, active=False)
            self._reset_pending = True
        self._overspeed(motion.speed_mps, now_s, sample)
        if self.brake_inhibited and self.fault_log is not None and now_s >= self._next_log_poll_s:
            self._next_log_poll_s = now_s + LOG_POLL_S
            stamp = self.fault_log.stamp()
            if stamp != self._log_stamp:
                self._log_stamp = stamp
                if not self.fault_log.brake_inhibited() and Fault.BRAKE_COIL not in self.active:
                    log.warning("latched coil fault cleared by a technician: brake enabled again")
                    self._end(Fault.COIL_NOT_FOLLOWING, now_s)
                    self.brake_inhibited = False

    def _overspeed(self, speed_mps: float, now_s: float, sample: BoardSample) -> None:
        s = self.loop.config.safety
        for code, limit, v in ((Fault.OVERSPEED_FORWARD, s.overspeed_forward_mps, speed_mps),
                               (Fault.OVERSPEED_BACKWARD, s.overspeed_backward_mps, -speed_mps)):
            if v > limit:
                if code not in self.active:
                    self.record(code, now_s, f"belt at {abs(speed_mps):.2f} m/s, limit {limit:.2f} m/s", sample)
                self.boost_ma = self.safe_brake_ma + s.overspeed_gain_ma_per_mps * (v - limit)
            elif code in self.active and v < limit - OVERSPEED_HYSTERESIS_MPS:
                self._end(code, now_s)
        if Fault.OVERSPEED_FORWARD not in self.active and Fault.OVERSPEED_BACKWARD not in self.active:
            self.boost_ma = 0.0

    def limit_ma(self, demand_ma: float) -> float:
        """What the active faults let the mode ask for (the guard still clamps and slews it)."""
        actions = {POLICIES[code].brake for code in self.active}
        if self.brake_inhibited or BrakeAction.OFF in actions:
            return 0.0
        # float(): the same values, and one type for the compiled build (controller/native.py).
        if BrakeAction.CAP_SAFE in actions:
            demand_ma = min(demand_ma, float(self.safe_brake_ma))
        if BrakeAction.HOLD_SAFE in actions or self._blind_too_long:
            demand_ma = float(self.safe_brake_ma)
        if BrakeAction.BOOST in actions:
            demand_ma = max(demand_ma, self.boost_ma)
        return demand_ma

    def request(self, demand_ma: float, sample: BoardSample | None, stopping: bool = False) -> BrakeRequest:
        """The decision for the next command: what the faults allow of `demand_ma`, whether the
        brake may be on (the watchdog always armed), a pending trip reset, and where the coil
        really is when the board has been deciding it (`sample` is the latest usable reading).
        While `stopping`, the brake ramps to 0 whatever the faults hold: the run is ending and the
        board's own responses (safe current on e-stop or a trip) still act."""
        brake = not self.brake_inhibited and BrakeAction.OFF not in {POLICIES[c].brake for c in self.active}
        reset, self._reset_pending = self._reset_pending, False
        coil_ma = float(sample.brake_current_ma) if sample is not None and board_in_charge(sample) else None
        return BrakeRequest(0.0 if stopping else self.limit_ma(demand_ma), brake_enable=brake, watchdog_enable=True,
                            fault_reset=reset, coil_ma=coil_ma)

    def internal_error(self, exc: Exception, now_s: float) -> None:
        """A bug in a cycle must not end the process with an athlete on the belt: record it once per
        episode; while it is active `request` holds the safe brake and the session is paused."""
        if Fault.INTERNAL_ERROR not in self.active:
            # Loud once per episode (with the traceback for the developer), quiet while it repeats.
            log.exception("control cycle failed: %s", exc)
            self.record(Fault.INTERNAL_ERROR, now_s, f"{type(exc).__name__}: {exc}")
        else:
            log.debug("control cycle failed again: %s", exc)

    def cycle_ok(self, now_s: float) -> None:
        """A cycle completed: an internal-error episode is over."""
        self._end(Fault.INTERNAL_ERROR, now_s)
