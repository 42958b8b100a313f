"""Personal bests by key: which way is better, and which of a session's bests are new."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def lower_is_better(key: str) -> bool:
    """Times (`…_s`) are better when shorter; power, mass and distance when larger."""
    return key.endswith("_s")


def better(key: str, value: float, than: float | None) -> bool:
    """True when `value` beats `than` (anything beats no result)."""
    if than is None:
        return True
    return value < than if lower_is_better(key) else value > than


@dataclass(frozen=True, slots=True)
class PersonalBest:
    """A best that beats the athlete's previous one (`previous` None: their first)."""

    key: str
    value: float
    previous: float | None


def new_personal_bests(previous: Mapping[str, float], session: Mapping[str, float]) -> list[PersonalBest]:
    """The session's bests that beat `previous`, in key order."""
    return [PersonalBest(key, value, previous.get(key)) for key, value in sorted(session.items())
            if better(key, value, previous.get(key))]


def merge_bests(previous: Mapping[str, float], session: Mapping[str, float]) -> dict[str, float]:
    """All-time bests after a session."""
    merged = dict(previous)
    for key, value in session.items():
        if better(key, value, merged.get(key)):
            merged[key] = value
    return merged
