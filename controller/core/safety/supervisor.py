"""The safety supervisor: the loop's exchange, fault detection and fault responses.

The control loop calls it at fixed points of every cycle:
`exchange` (talk to the board, supervise the link, reconnect and re-arm, reject implausible
samples) → `observe` (status bits, watchdog trips, over-speed) → `limit_ma` (what the active
faults allow the mode to ask for) → the setpoint guard → `command` (what is written next).
It never lets an exception from the board escape: a lost link is a fault with a response,
not a crash, because an athlete may be on the belt.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from controller.core.commands import Pause, Stop
from controller.core.safety.faults import (
    POLICIES,
    BrakeAction,
    FaultLog,
    SessionAction,
    fault_record,
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
STATUS_FAULTS: dict[Status, str] = {
    Status.ESTOP: "estop",
    Status.SAFETY_KEY_REMOVED: "safety_key",
    Status.BRAKE_FAULT: "brake_coil",
    Status.OVER_TEMPERATURE: "over_temperature",
    Status.UNDER_VOLTAGE: "under_voltage",
}
#: Over-speed ends this far under its limit, so a runner at the limit does not toggle it.
OVERSPEED_HYSTERESIS_MPS = 0.3
#: A sensor fault holds the last setpoint this long, then the brake ramps to the safe current.
SENSOR_HOLD_S = 0.5
#: While the brake is inhibited, look for a technician's clear in the log this often.
LOG_POLL_S = 1.0


class SafetySupervisor:
    """Owns link supervision and the fault responses of one control loop."""

    def __init__(self, loop: ControlLoop) -> None:
        self.loop = loop
        safety = loop.config.safety
        self.safe_brake_ma = safety.safe_brake_ma
        self.link = LinkSupervisor(safety.link_loss_s, loop.period_s,
                                   max(loop.period_s, safety.reconnect_backoff_max_s))
        self.fault_log: FaultLog | None = None
        self.active: dict[str, dict[str, Any]] = {}  # fault code -> its record in loop.faults
        self.brake_inhibited = False  # a latched coil fault: brake disabled until cleared
        self.last_good: BoardSample | None = None
        self.boost_ma = 0.0
        self._reset_pending = False
        self._brake_was_enabled = False
        self._started_s: float | None = None
        self._blind_since_s = 0.0
        self._log_stamp = (0, 0)
        self._next_log_poll_s = 0.0

    # --- the fault record ---------------------------------------------------------------
    def attach_log(self, fault_log: FaultLog) -> None:
        """Log faults to the data directory; a latched coil fault there disables the brake."""
        self.fault_log = fault_log
        inhibiting = fault_log.brake_inhibited()
        if inhibiting:
            self.brake_inhibited = True
            self._log_stamp = fault_log.stamp()
            # Shown in this run's report too (not logged again: it is already in the log).
            entry = fault_record("brake_coil", self.loop.clock.now_s(),
                                 f"latched since {inhibiting[-1].get('at')} and not cleared: brake disabled "
                                 f"for this run", self.state())
            entry["from_log"] = True
            self.loop.faults.append(entry)
            log.error("brake disabled: latched %s from %s; a technician must check the coil and run "
                      "`millctl faults clear`", inhibiting[-1].get("code"), inhibiting[-1].get("at"))

    def state(self, sample: BoardSample | None = None) -> dict[str, Any]:
        """The machine state that goes with a fault record."""
        loop = self.loop
        latest = loop.latest
        sample = sample or (latest.sample if latest else None) or self.last_good
        state: dict[str, Any] = {
            "session_state": loop.session_state.value, "mode": loop.mode.name, "target": loop.mode.target,
            "speed_mps": round(latest.motion.speed_mps, 3) if latest else 0.0,
            "setpoint_ma": loop._command.brake_setpoint_ma, "brake_enabled": loop._command.brake_enable,
            "distance_m": round(loop.totals.distance_m, 3), "elapsed_s": round(loop.totals.elapsed_s, 3),
        }
        if sample is not None:
            state.update(coil_ma=sample.brake_current_ma, status=sample.status_names(),
                         board_temp_c=sample.board_temp_c, supply_mv=sample.supply_mv,
                         board_fault_code=sample.fault_code)
        return state

    def record(self, code: str, now_s: float, cause: str, sample: BoardSample | None = None,
               active: bool = True) -> dict[str, Any]:
        """Record a fault: `--json` `faults`, the log, the warning log, and its session action."""
        entry = fault_record(code, now_s, cause, self.state(sample),
                             sample.fault_code if sample is not None and sample.fault_code else None)
        entry["active"] = active
        if self._started_s is not None:
            entry["run_s"] = round(now_s - self._started_s, 3)  # readable when t_s is a monotonic clock
        self.loop.faults.append(entry)
        if active:
            self.active[code] = entry
        if self.fault_log is not None:
            self.fault_log.append(entry)
        p = POLICIES[code]
        log.warning("fault %s at %.3f s: %s; response: %s", code, now_s, cause, p.response)
        if p.inhibits_brake:
            self.brake_inhibited = True
        self._session_action(p.session)
        return entry

    def _end(self, code: str, now_s: float) -> None:
        entry = self.active.pop(code, None)
        if entry is not None:
            entry["active"] = False
            entry["ended_t_s"] = round(now_s, 3)

    def _session_action(self, action: SessionAction) -> None:
        loop = self.loop
        if action == SessionAction.PAUSE and loop.session_state == SessionState.RUNNING:
            loop.execute(Pause())
        elif action == SessionAction.STOP and loop.session_state in (SessionState.RUNNING, SessionState.PAUSED):
            loop.execute(Stop())

    def refusal(self, command: str) -> str | None:
        """Why `start`/`resume` must wait, or None: not while a fault holds the belt."""
        if command not in ("start", "resume"):
            return None
        holding = [c for c, _ in self.active.items()
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

    async def exchange(self, command: BoardCommand, now_s: float) -> BoardSample | None:
        """Write the command and read a sample; None when this cycle has no usable sample."""
        loop = self.loop
        if self.link.lost:
            if self.link.attempt_due(now_s):
                await self._reconnect()
            return None
        try:
            sample = await loop.board.exchange(command)
        except BoardError as exc:
            self._failed(exc)
            return None
        now = loop.clock.now_s()
        self.link.succeeded(now)
        self._end("board_exception", now)
        self._brake_was_enabled = command.brake_enable
        return await self._plausible(sample, now)

    def _failed(self, exc: BoardError) -> None:
        loop = self.loop
        now = loop.clock.now_s()
        loop.link_errors += 1
        if loop.link_errors == 1 or loop.link_errors % 100 == 0:
            log.warning("board exchange failed (%d so far): %s", loop.link_errors, exc)
        if isinstance(exc, ModbusExceptionReply) and "board_exception" not in self.active:
            self.record("board_exception", now, str(exc))
        if self.link.failed(now):
            self.record("link_lost", now, f"no answer from {loop.board.url} for "
                        f"{now - (self.link.last_ok_s or now):.3f} s: {exc}")
            if loop.latest is not None:
                loop.latest = replace(loop.latest, t_s=now, link_ok=False)

    async def _reconnect(self) -> None:
        loop = self.loop
        try:
            await loop.board.close()
            await loop.board.open()
            await self.rearm()
        except BoardError as exc:
            self.link.attempt_failed(loop.clock.now_s())
            if self.link.attempts in (1, 10) or self.link.attempts % 100 == 0:
                log.warning("reconnection attempt %d to %s failed: %s", self.link.attempts, loop.board.url, exc)
            return
        now = loop.clock.now_s()
        outage = self.link.succeeded(now)
        entry = self.active.get("link_lost")
        if entry is not None:
            entry["outage_s"] = round(outage or 0.0, 3)
        self._end("link_lost", now)
        self._end("board_exception", now)
        log.warning("link to %s back after %.3f s; board re-armed", loop.board.url, outage or 0.0)

    async def rearm(self) -> None:
        """Bring a board back under control: settings first, then the watchdog, then the brake at
        the safe current. The guard starts from the safe current, so the mode's demand is reached
        through the slew limit, never by a jump."""
        loop = self.loop
        board = loop.board
        probe = await board.read_sample()
        now = loop.clock.now_s()
        rebooted = ((self.last_good is not None and board_restarted(self.last_good, probe))
                    or lost_control_register(probe, self._brake_was_enabled))
        await board.apply_settings(loop.board_settings())
        if rebooted:
            self.record("board_reboot", now, "board clock or control register back at power-on values "
                        "(the board restarted): check its supply and reset line", probe, active=False)
            loop.estimator.reset()
        if probe.status & Status.WATCHDOG_TRIPPED:
            self.record("watchdog_tripped", now, f"no command reached the board for more than "
                        f"{loop.config.watchdog_ms} ms", probe, active=False)
        brake = not self.brake_inhibited
        if rebooted or probe.status & Status.WATCHDOG_TRIPPED:
            # The board is in charge (safe brake after a trip, brake off after a reboot). Watchdog
            # first: armed while a trip still holds the safe brake on; a rebooted board's brake
            # stays off until then. Then the brake at the safe current, and the trip cleared.
            first = BoardCommand(self.safe_brake_ma, brake and not rebooted, True)
            await board.exchange(first)
            self._brake_was_enabled = first.brake_enable  # a failure from here on is not a reboot
            sample = await board.exchange(BoardCommand(self.safe_brake_ma, brake, True, fault_reset=True))
            loop.guard.reset(self.safe_brake_ma if brake else 0)
        else:
            # Back before the watchdog tripped: the board still holds our last setpoint, so control
            # continues from it through the slew limit (a jump to the safe current would jolt).
            sample = await board.exchange(self.command(round(loop.guard.setpoint_ma)))
        self._brake_was_enabled = brake
        loop._command = self.command(round(loop.guard.setpoint_ma))
        if rebooted:
            loop.estimator.update(sample)
        self.last_good = sample

    async def _plausible(self, sample: BoardSample, now_s: float) -> BoardSample | None:
        loop = self.loop
        previous = self.last_good
        issue = check_current(sample)
        if issue is None and previous is not None:
            if board_restarted(previous, sample):
                try:
                    await self.rearm()
                except BoardError as exc:
                    self._failed(exc)
                return None
            issue = check_encoder(previous, sample, loop.config.encoder.metres_per_count)
        if issue is not None:
            if issue.code not in self.active:
                self.record(issue.code, now_s, issue.cause, sample)
                self._blind_since_s = now_s
            elif now_s - self._blind_since_s >= SENSOR_HOLD_S:
                # Blind for too long to keep braking by the last estimate: ramp to the safe current.
                loop._command = self.command(loop.guard.next(self.limit_ma(self.safe_brake_ma), loop.period_s))
            if issue.code == "encoder_jump":
                # Start speed and distance afresh from this count: the jump is never counted.
                loop.estimator.reset()
                loop.estimator.update(sample)
                self.last_good = sample
            return None
        self._end("encoder_jump", now_s)
        self._end("current_implausible", now_s)
        self.last_good = sample
        return sample

    def observe(self, sample: BoardSample, motion: Motion, now_s: float) -> None:
        """Machine faults from the status register, watchdog trips and over-speed."""
        status = sample.status
        for flag, code in STATUS_FAULTS.items():
            if flag & status:
                if code not in self.active:
                    self.record(code, now_s, f"status bit {flag.name} set by the board", sample)
                else:
                    # Keep the session held while the condition lasts (e.g. pressed at start-up).
                    self._session_action(POLICIES[code].session)
            elif code in self.active:
                self._end(code, now_s)
        if status & Status.WATCHDOG_TRIPPED and not self._reset_pending:
            self.record("watchdog_tripped", now_s, f"board reports its watchdog tripped (no command for "
                        f"{self.loop.config.watchdog_ms} ms): the loop stalled", sample, active=False)
            self._reset_pending = True
            self.loop.guard.reset(self.safe_brake_ma)  # the board is holding the safe current
        self._overspeed(motion.speed_mps, now_s, sample)
        if self.brake_inhibited and self.fault_log is not None and now_s >= self._next_log_poll_s:
            self._next_log_poll_s = now_s + LOG_POLL_S
            stamp = self.fault_log.stamp()
            if stamp != self._log_stamp:
                self._log_stamp = stamp
                if not self.fault_log.brake_inhibited() and "brake_coil" not in self.active:
                    log.warning("latched coil fault cleared by a technician: brake enabled again")
                    self.brake_inhibited = False

    def _overspeed(self, speed_mps: float, now_s: float, sample: BoardSample) -> None:
        s = self.loop.config.safety
        for code, limit, v in (("overspeed_forward", s.overspeed_forward_mps, speed_mps),
                               ("overspeed_backward", s.overspeed_backward_mps, -speed_mps)):
            if v > limit:
                if code not in self.active:
                    self.record(code, now_s, f"belt at {abs(speed_mps):.2f} m/s, limit {limit:.2f} m/s", sample)
                self.boost_ma = self.safe_brake_ma + s.overspeed_gain_ma_per_mps * (v - limit)
            elif code in self.active and v < limit - OVERSPEED_HYSTERESIS_MPS:
                self._end(code, now_s)
        if "overspeed_forward" not in self.active and "overspeed_backward" not in self.active:
            self.boost_ma = 0.0

    def limit_ma(self, demand_ma: float) -> float:
        """What the active faults let the mode ask for (the guard still clamps and slews it)."""
        actions = {POLICIES[code].brake for code in self.active}
        if self.brake_inhibited or BrakeAction.OFF in actions:
            return 0.0
        if BrakeAction.CAP_SAFE in actions:
            demand_ma = min(demand_ma, self.safe_brake_ma)
        if BrakeAction.HOLD_SAFE in actions:
            demand_ma = self.safe_brake_ma
        if BrakeAction.BOOST in actions:
            demand_ma = max(demand_ma, self.boost_ma)
        return demand_ma

    def command(self, setpoint_ma: int) -> BoardCommand:
        """The next command: the watchdog always armed, the brake unless a fault disables it."""
        brake = not self.brake_inhibited and "brake_coil" not in self.active
        reset, self._reset_pending = self._reset_pending, False
        return BoardCommand(setpoint_ma if brake else 0, brake_enable=brake, watchdog_enable=True,
                            fault_reset=reset)

    def internal_error(self, exc: Exception, now_s: float) -> None:
        """A bug in a cycle must not end the process with an athlete on the belt: hold the safe
        brake (through the guard), pause the session, keep feeding the watchdog."""
        if "internal_error" not in self.active:
            # Loud once per episode (with the traceback for the developer), quiet while it repeats.
            log.exception("control cycle failed: %s", exc)
            self.record("internal_error", now_s, f"{type(exc).__name__}: {exc}")
        else:
            log.debug("control cycle failed again: %s", exc)
        loop = self.loop
        loop._command = self.command(loop.guard.next(self.limit_ma(self.safe_brake_ma), loop.period_s))

    def cycle_ok(self, now_s: float) -> None:
        """A cycle completed: an internal-error episode is over."""
        self._end("internal_error", now_s)
