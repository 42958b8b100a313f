"""The real-time core: everything between a board sample and the next board command.

A sample walks down: `loop` (one board exchange per cycle) → `safety.supervisor` (link,
plausibility, status faults) → `estimator` (speed and distance on the board's clock) →
`session_totals` → `modes` (a brake demand) → `workouts.engine` (segment changes) →
`guard` (clamp and slew: the last word on the coil current). Commands from outside are
`commands` models; what the core tells the outside is `events` and snapshots.
Nothing here imports `controller.services`.
"""
