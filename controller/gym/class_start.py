"""Starting a class, the one way the CLI (`millctl gym class start`) and the dashboard do it:
check the workout, store the class with its start time, send `class-start` to each machine
(controller/gym/commander.py) and keep what each answered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine

from controller.core.commands import WorkoutName
from controller.core.workouts.model import WorkoutError, load_workout, workout_dirs
from controller.gym.classes import ClassStore
from controller.gym.commander import Answer, CommanderError, same_body, send_commands
from controller.settings.mqtt import MqttSection

_WORKOUT_NAME: TypeAdapter[str] = TypeAdapter(WorkoutName)
#: A class starts this long after it is asked for when no time is given: time for every machine to arm.
DEFAULT_LEAD_S = 10.0
#: Machines in one class at most (a gym's floor; the leaderboard payload allows 500).
MAX_MACHINES = 200


class ClassStartError(ValueError):
    """A class that cannot be started (bad workout or machines, broker away); nothing armed."""


@dataclass
class StartedClass:
    id: str
    start_at: str
    workout: str
    answers: list[Answer] = field(default_factory=list)

    @property
    def armed(self) -> int:
        return sum(a.ok for a in self.answers)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "start_at": self.start_at, "workout": self.workout,
                "machines": [a.as_json() for a in self.answers]}


def check_request(workout: str, machines: Sequence[str], data_dir: Path | None) -> list[str]:
    """The machine names, once the workout is a known name and the machines are plausible."""
    try:
        _WORKOUT_NAME.validate_python(workout)
        load_workout(workout, workout_dirs(data_dir))
    except ValidationError:
        raise ClassStartError(f"workout {workout[:64]!r}: not a workout name") from None
    except WorkoutError as exc:
        raise ClassStartError(str(exc).splitlines()[0]) from None
    names = list(dict.fromkeys(m.strip() for m in machines if m.strip()))
    if not names:
        raise ClassStartError("give at least one machine")
    if len(names) > MAX_MACHINES:
        raise ClassStartError(f"at most {MAX_MACHINES} machines in one class")
    bad = [m for m in names if len(m) > 200 or any(c in m for c in "/+#\0")]
    if bad:
        raise ClassStartError(f"not a machine name: {bad[0][:64]!r}")
    return names


async def start_class(engine: Engine, settings: MqttSection, site: str, workout: str, machines: Sequence[str],
                      start_at: datetime, data_dir: Path | None = None) -> StartedClass:
    """Store the class and arm it on every machine; machines that refuse are kept as refused."""
    names = check_request(workout, machines, data_dir)
    store = ClassStore(engine)
    info = await asyncio.to_thread(store.create, site, workout, names, start_at)
    body = {"class_id": info.id, "workout": workout, "start_at": info.start_at}
    try:
        answers = await send_commands(settings, info.site, "class-start", same_body(names, body))
    except CommanderError as exc:
        for name in names:
            await asyncio.to_thread(store.set_machine, info.id, name, status="refused", error=str(exc)[:300])
        raise ClassStartError(f"class {info.id} not started: {exc}") from None
    for answer in answers:
        if not answer.ok:
            await asyncio.to_thread(store.set_machine, info.id, answer.machine, status="refused",
                                    error=(answer.error or "")[:300])
    return StartedClass(info.id, info.start_at, workout, answers)


_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)s?$")


def parse_start(text: str | None, now: datetime) -> datetime:
    """`--at`: ISO 8601 (UTC when no offset is given) or `+SECONDS` from now; default now + 10 s."""
    if text is None:
        return now + timedelta(seconds=DEFAULT_LEAD_S)
    relative = _RELATIVE.match(text.strip())
    if relative:
        return now + timedelta(seconds=float(relative.group(1)))
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--at {text!r}: expected a time like 2026-12-05T18:00:00Z or +30s") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
