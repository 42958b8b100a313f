"""Pickling frozen dataclasses field by field, the same in Python and compiled (controller/native.py)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def reduce_fields(obj: Any) -> tuple[Any, tuple[Any, ...]]:
    """`__reduce__` of a dataclass: rebuilt by its constructor from its fields, in order. A compiled
    frozen dataclass cannot be unpickled the default way (it refuses the attribute writes)."""
    return type(obj), tuple(getattr(obj, f.name) for f in fields(obj))
