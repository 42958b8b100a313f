"""The `[web]` section of the machine config: the console, who may command through it, and
how the technician signs in (docs/network-trust.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Shortest technician token accepted: a 4-digit PIN fell to a brute force in a second.
TECHNICIAN_TOKEN_MIN_CHARS = 8


class WebSection(BaseModel):
    """Console settings. Without `technician_token` the technician page stays locked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Token for the technician page and endpoints (≥ 8 characters); unset = locked.
    technician_token: Annotated[str | None, Field(max_length=128)] = None
    #: How often live numbers are pushed to each browser (the brief asks for ≥ 5 Hz).
    push_hz: Annotated[float, Field(ge=5.0, le=50.0)] = 10.0
    #: Commands from the machine itself (loopback) need no operator session.
    trust_local: bool = True
    #: Operator PIN for tablets; unset = a one-time pairing code is shown on the machine at start.
    operator_pin: Annotated[str | None, Field(min_length=4, max_length=64)] = None
    #: The live numbers (page, /api/state, the WebSocket push) may be watched without a session.
    live_view_open: bool = True
    #: Host names (besides IP addresses and localhost) the console answers to, e.g. "mill-1.gym.lan".
    allowed_hosts: tuple[str, ...] = ()

    @field_validator("technician_token")
    @classmethod
    def _strong_enough(cls, token: str | None) -> str | None:
        if token is not None and (len(token) < TECHNICIAN_TOKEN_MIN_CHARS or not token.isascii()
                                  or not token.isprintable()):
            raise ValueError(f"[web] technician_token must be at least {TECHNICIAN_TOKEN_MIN_CHARS} printable "
                             f"ASCII characters (a short PIN is guessed in seconds); choose a longer one, "
                             f"e.g. from `openssl rand -hex 8`")
        return token
