"""JSON from the network, parsed with limits: size, nesting depth and number length.

The standard parser recurses once per nesting level (100 000 levels → `RecursionError`),
turns a 5000-digit integer into a `ValueError` that is not a `JSONDecodeError`, reads
`1e999` as infinity and accepts `NaN`. Each of those once stopped a service. Here every
such input becomes one `BadJson` with a short reason, and the size and depth are checked
before the parser runs, so a flood of hostile messages costs a bounded amount of work.
Used by the console (HTTP bodies, WebSocket frames) and by MQTT commands.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

#: Longest number literal accepted (digits, sign, point, exponent): a float has 17
#: significant digits; nothing a command carries needs more.
MAX_NUMBER_CHARS = 32
#: Bytes of the payload quoted back in an error: enough to recognise it, never the whole.
EXCERPT_BYTES = 60

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class BadJson(ValueError):
    """A payload that is not acceptable JSON; the message says why, without the payload."""


@dataclass(frozen=True)
class JsonLimits:
    """How much JSON one message may carry."""

    max_bytes: int = 4096
    max_depth: int = 8


def excerpt(payload: bytes, limit: int = EXCERPT_BYTES) -> str:
    """The first bytes of a payload as printable text, marked when cut."""
    head = payload[:limit].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else "?" for c in head)
    return text + (f"… ({len(payload)} bytes)" if len(payload) > limit else "")


def nesting_depth(payload: bytes) -> int:
    """The deepest `[`/`{` nesting outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def _number(text: str) -> float | int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BadJson(f"a number with {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise BadJson(f"number {text} is out of range")
    return value


def _constant(name: str) -> None:
    raise BadJson(f"{name} is not a number JSON allows")


def loads_bounded(payload: bytes | str, limits: JsonLimits = JsonLimits()) -> Any:
    """Parse one JSON document within `limits`, or raise `BadJson` saying what is wrong."""
    data = payload.encode("utf-8", errors="surrogatepass") if isinstance(payload, str) else payload
    if len(data) > limits.max_bytes:
        raise BadJson(f"message of {len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    depth = nesting_depth(data)
    if depth > limits.max_depth:
        raise BadJson(f"nested {depth} levels deep (at most {limits.max_depth})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BadJson(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
