"""The real-time core: everything between a board sample and the next board command.

A sample walks down: `loop` (one board exchange per cycle) → `safety.supervisor` (link,
plausibility, status faults, the coil following its setpoint) → `estimator` (speed and distance
on the board's clock) → `session_totals` → `modes` (a brake demand) → `workouts.engine`
(segment changes) → `safety.supervisor.request` (what the faults allow: a `BrakeRequest`) →
`guard` (`SetpointGuard.command`, the only maker of board commands: clamp and slew last).
`session` holds the session's lifecycle and applies the `commands` models from outside; what
the core tells the outside is `events` and snapshots. `thresholds` holds the motion thresholds
every display shares; `safety.faults` the one vocabulary of faults. Nothing here imports
`controller.services`.

The core runs in a process of its own (`process`, started by `millctl run`): `realtime` pins it
to a CPU and asks for SCHED_FIFO; `channel` defines what crosses to the parent (commands in;
`CoreInfo`, snapshots, `status.CoreStatus` values, events and the report out); `endpoint` is the
core's never-blocking end of it.
"""
