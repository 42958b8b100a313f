"""The session's state machine: idle → ready → running ⇄ paused → finished.

Only a running session accumulates distance, work and time. The table below is the single
source of which command is allowed in which state.
"""

from __future__ import annotations

import enum


class SessionState(enum.StrEnum):
    IDLE = "idle"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"


TRANSITIONS: dict[str, dict[SessionState, SessionState]] = {
    "start": {SessionState.IDLE: SessionState.RUNNING, SessionState.READY: SessionState.RUNNING,
              SessionState.FINISHED: SessionState.RUNNING},
    "pause": {SessionState.RUNNING: SessionState.PAUSED},
    "resume": {SessionState.PAUSED: SessionState.RUNNING},
    "stop": {SessionState.RUNNING: SessionState.FINISHED, SessionState.PAUSED: SessionState.FINISHED,
             SessionState.READY: SessionState.FINISHED},
}


class TransitionError(ValueError):
    pass


def next_state(command: str, state: SessionState) -> SessionState:
    """The state after `command`, or a `TransitionError` naming what is allowed."""
    table = TRANSITIONS[command]
    if state not in table:
        allowed = ", ".join(sorted(s.value for s in table))
        raise TransitionError(f"cannot {command} while {state.value}; {command} is allowed when: {allowed}")
    return table[state]
