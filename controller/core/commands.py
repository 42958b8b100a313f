"""Commands from the outside world (web console, MQTT, FTMS, CLI), validated by pydantic.

Every remote interface builds one of these models and hands it to `ControlLoop.execute`,
which answers with a `CommandResult`. A command never touches the board directly: it
changes the mode or the session state, and the setpoint guard still has the last word.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from controller.core.athlete import Athlete


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A workout is named, never located: a plain name from the configured workout directories
#: (no path separators, no `.toml`), so no client can make the controller read another file.
WorkoutName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]


class Start(_Command):
    name: Literal["start"] = "start"
    workout: WorkoutName | None = None


class Pause(_Command):
    name: Literal["pause"] = "pause"


class Resume(_Command):
    name: Literal["resume"] = "resume"


class Stop(_Command):
    name: Literal["stop"] = "stop"


class SetMode(_Command):
    name: Literal["set-mode"] = "set-mode"
    mode: Annotated[str, Field(min_length=1, max_length=32)]
    target: float | None = None


class LoadWorkout(_Command):
    name: Literal["load-workout"] = "load-workout"
    workout: WorkoutName


class SignIn(_Command):
    """An athlete takes the machine: their id, name, body mass and levels (controller/core/athlete.py)."""

    name: Literal["sign-in"] = "sign-in"
    athlete: Athlete


class SignOut(_Command):
    name: Literal["sign-out"] = "sign-out"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A class id as the hub makes them (short, printable, no path or topic characters).
ClassId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class ClassStart(_Command):
    """Arm a class: start `workout` exactly at `start_at` (wall-clock UTC, ISO 8601 with ms) on
    the machine's own clock, at the signed-in athlete's level. Sent ahead of time, so a slow
    link delays only the arming, never the start."""

    name: Literal["class-start"] = "class-start"
    class_id: ClassId
    workout: WorkoutName
    start_at: Annotated[AwareDatetime, AfterValidator(_utc)]


Command = Annotated[Start | Pause | Resume | Stop | SetMode | LoadWorkout | SignIn | SignOut | ClassStart,
                    Field(discriminator="name")]
COMMAND_NAMES = ("start", "pause", "resume", "stop", "set-mode", "load-workout", "sign-in", "sign-out",
                 "class-start")


class CommandResult(BaseModel):
    """The answer to a command: ok, or an error saying what is wrong and what is allowed."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    error: str | None = None
    state: str = ""

    @classmethod
    def success(cls, state: str) -> CommandResult:
        return cls(ok=True, state=state)

    @classmethod
    def refused(cls, error: str, state: str) -> CommandResult:
        return cls(ok=False, error=error, state=state)
