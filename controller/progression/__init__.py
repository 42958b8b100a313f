"""Progression: what an athlete's sessions say about them. Pure functions and small trackers,
no I/O, used by the gym hub (from stored sessions) and by the machine (live, for a new
personal best the moment it happens).

- `bests`: personal bests of one session from its 1 Hz records and segments, per direction.
- `levels`: progression levels per quality (power, speed, endurance, agility) from bests.
- `proposal`: the next workout at the athlete's level.
- `records`: which bests are new, and how to compare two values of a best.

The rules and their reasoning are in docs/levels.md.
"""
