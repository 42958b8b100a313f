"""Who may do what through the console: operator sessions, the technician token, lockouts,
and the code that proves a technician stands at the machine (docs/network-trust.md).

- Operators sign in with the `[web] operator_pin`, or, when none is set, with a one-time
  pairing code shown on the machine's own terminal at start (a new one after each use).
  The session lives in an HttpOnly, SameSite=Strict cookie; a front-desk screen can be
  paired read-only. With `[web] trust_local = true` the machine itself (loopback) needs none.
- Secrets are compared in constant time and never logged. Every client that guesses wrong
  five times is locked out for 60 s, doubling with each further lockout; lockouts are logged.
- Clearing a latched fault re-enables the brake, so besides the token it needs a short code
  shown only on the machine's terminal: a remote attacker with a stolen token still cannot.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Role = Literal["operator", "viewer"]
SecondsClock = Callable[[], float]
Announce = Callable[[str], None]

SESSION_COOKIE = "millctl_session"
TECH_COOKIE = "millctl_tech"
TECH_HEADER = "X-Technician-Token"
#: Failed attempts in a row before a client is locked out.
FAILURES_BEFORE_LOCKOUT = 5
#: The first lockout; each further one doubles, up to a day.
FIRST_LOCKOUT_S = 60.0
MAX_LOCKOUT_S = 86_400.0
#: Clients remembered by the lockout table (the oldest are forgotten first): bounded memory.
MAX_CLIENTS = 4096
#: An operator session lasts a working day.
SESSION_TTL_S = 12 * 3600.0
#: Digits of a pairing code and of a fault-clear code.
CODE_DIGITS = 6
#: How long a fault-clear code stays valid.
CLEAR_CODE_TTL_S = 120.0


def announce_on_terminal(text: str) -> None:
    """Show a code on the machine's own terminal (stderr), where only someone at the machine sees it."""
    print(text, file=sys.stderr, flush=True)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison that also accepts any non-ASCII input (it is simply wrong)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def is_loopback(remote: str | None) -> bool:
    """True for a request from the machine itself."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def new_code() -> str:
    """A random numeric code of CODE_DIGITS digits."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


@dataclass
class _Client:
    failures: int = 0
    lockouts: int = 0
    locked_until_s: float = 0.0


class Lockout:
    """Failed attempts per client, and the lockouts they earn."""

    def __init__(self, clock: SecondsClock, what: str) -> None:
        self._clock = clock
        self._what = what
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def locked_for_s(self, client: str) -> float:
        """Seconds left in this client's lockout (0 if none)."""
        entry = self._clients.get(client)
        return max(0.0, entry.locked_until_s - self._clock()) if entry is not None else 0.0

    def failed(self, client: str) -> None:
        """Count a wrong secret; the fifth in a row starts a lockout."""
        entry = self._clients.pop(client, None) or _Client()
        self._clients[client] = entry  # most recent last
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        entry.failures += 1
        if entry.failures >= FAILURES_BEFORE_LOCKOUT:
            duration_s = min(MAX_LOCKOUT_S, FIRST_LOCKOUT_S * 2 ** entry.lockouts)
            entry.lockouts += 1
            entry.failures = 0
            entry.locked_until_s = self._clock() + duration_s
            log.warning("%s: client %s locked out for %.0f s after %d wrong attempts (lockout %d)",
                        self._what, client, duration_s, FAILURES_BEFORE_LOCKOUT, entry.lockouts)

    def succeeded(self, client: str) -> None:
        """The right secret: the client's record is wiped."""
        self._clients.pop(client, None)


class OperatorSessions:
    """Operator sign-in with the PIN or the one-time pairing code, and the sessions it opens."""

    def __init__(self, pin: str | None, clock: SecondsClock, announce: Announce = announce_on_terminal) -> None:
        self._pin = pin
        self._clock = clock
        self._announce = announce
        self._sessions: dict[str, tuple[Role, float]] = {}
        self.lockout = Lockout(clock, "operator sign-in")
        self._pairing_code: str | None = None

    def open_pairing(self) -> None:
        """Without a PIN: make the first pairing code and show it on the machine's terminal."""
        if self._pin is None:
            self._new_pairing_code()

    def _new_pairing_code(self) -> None:
        self._pairing_code = new_code()
        self._announce(f"console pairing code: {self._pairing_code} (sign in once with it on a tablet; "
                       f"a new code is shown here after each use)")

    def sign_in(self, secret: str, read_only: bool) -> str | None:
        """A new session id for the right PIN or pairing code, else None (the caller counts failures)."""
        expected = self._pin if self._pin is not None else self._pairing_code
        if expected is None or not same_secret(secret, expected):
            return None
        if self._pin is None:
            self._new_pairing_code()  # one-time: the code just used is spent
        session_id = secrets.token_urlsafe(32)
        self._expire()
        self._sessions[session_id] = ("viewer" if read_only else "operator", self._clock() + SESSION_TTL_S)
        return session_id

    def role(self, session_id: str | None) -> Role | None:
        """The role of a live session, or None."""
        if not session_id:
            return None
        entry = self._sessions.get(session_id)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def sign_out(self, session_id: str | None) -> None:
        """End a session (unknown ids are ignored)."""
        if session_id:
            self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        now_s = self._clock()
        for sid in [sid for sid, (_, until) in self._sessions.items() if until <= now_s]:
            del self._sessions[sid]


class ClearCode:
    """A short code shown on the machine's terminal that a fault clear must quote back."""

    def __init__(self, clock: SecondsClock, announce: Announce = announce_on_terminal) -> None:
        self._clock = clock
        self._announce = announce
        self._code: str | None = None
        self._until_s = 0.0

    def issue(self) -> None:
        """Show a fresh code on the terminal (valid CLEAR_CODE_TTL_S)."""
        self._code = new_code()
        self._until_s = self._clock() + CLEAR_CODE_TTL_S
        self._announce(f"fault clear requested from the technician page: code {self._code} "
                       f"(valid {CLEAR_CODE_TTL_S:.0f} s; only give it to a technician standing at this machine)")

    def accept(self, given: str) -> bool:
        """True (and the code is spent) if `given` is the live code."""
        if self._code is None or self._clock() >= self._until_s or not same_secret(given, self._code):
            return False
        self._code = None
        return True
