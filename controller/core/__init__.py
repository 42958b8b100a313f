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
"""
