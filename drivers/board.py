"""The board interface the control loop sees, and the registry that picks a transport by URL.

Like ros2_control's hardware interface, the loop calls one method per cycle and never sees
the transport. Like python-can's bus registry, backends are found by URL scheme; the
in-process simulator registers itself through the `millctl.boards` entry point, so this
package never imports it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from drivers.clock import Clock, MonotonicClock
from drivers.errors import BoardConfigError
from drivers.registers import DEFAULT_MAP, RegisterMap
from drivers.sample import BoardCommand, BoardSample, BoardSettings


class Board(abc.ABC):
    """One brake-controller board. Use as an async context manager."""

    register_map: RegisterMap = DEFAULT_MAP
    #: Modbus (or equivalent) transactions made so far; the bench reports them per cycle.
    transactions: int = 0

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect. Raises `LinkError` when the board cannot be reached."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect; safe to call twice."""

    @abc.abstractmethod
    async def apply_settings(self, settings: BoardSettings) -> None:
        """Write watchdog time, safe brake current and ramp limit (holding 2..4)."""

    @abc.abstractmethod
    async def exchange(self, command: BoardCommand) -> BoardSample:
        """Write the command and read a sample, in one bus transaction where possible."""

    @abc.abstractmethod
    async def read_sample(self) -> BoardSample:
        """Read a sample without writing (does not feed the watchdog)."""

    @abc.abstractmethod
    async def read_holding(self) -> dict[str, int]:
        """Raw values of every holding register in the map, by name."""

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where the board is, for logs and reports."""

    def ground_truth(self) -> Mapping[str, float] | None:
        """The simulator's ground truth; None for real hardware."""
        return None

    async def __aenter__(self) -> Board:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


@dataclass(frozen=True)
class BoardURL:
    """A parsed board address: `sim`, `tcp://host:port`, `serial:///dev/x?baud=N`, `/dev/x`."""

    scheme: str
    host: str = ""
    port: int | None = None
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> BoardURL:
        text = text.strip()
        if not text:
            raise BoardConfigError("empty board URL; use sim, tcp://HOST:PORT or serial:///dev/ttyX")
        if text.startswith("/"):
            return cls("serial", path=text, text=text)
        if "://" not in text:
            return cls(text, text=text)
        parts = urlsplit(text)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            port = parts.port
        except ValueError as exc:
            raise BoardConfigError(f"bad port in board URL {text!r}: {exc}") from None
        return cls(parts.scheme, parts.hostname or "", port, parts.path, query, text)


@dataclass(frozen=True)
class BoardContext:
    """What every board factory receives besides the URL."""

    clock: Clock = field(default_factory=MonotonicClock)
    register_map: RegisterMap = DEFAULT_MAP
    timeout_s: float = 0.05
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The control loop's rate, for boards whose link has a budget (serial buses); None when
    #: no fixed-rate loop will run (a one-off read).
    rate_hz: float | None = None


BoardFactory = Callable[[BoardURL, BoardContext], Board]
_REGISTRY: dict[str, BoardFactory] = {}


def register_board(scheme: str, factory: BoardFactory) -> None:
    """Make `scheme://…` URLs open boards built by `factory`."""
    _REGISTRY[scheme] = factory


def _find_factory(scheme: str) -> BoardFactory:
    if scheme not in _REGISTRY:
        if scheme in ("tcp", "serial", "rtu+tcp"):
            import drivers.modbus  # noqa: F401  (registers itself)
        elif scheme == "modules":
            from drivers import modules  # noqa: F401  (registers itself)
        else:
            for ep in entry_points(group="millctl.boards"):
                if ep.name == scheme:
                    _REGISTRY[scheme] = ep.load()
    try:
        return _REGISTRY[scheme]
    except KeyError:
        known = sorted({*_REGISTRY, "tcp", "serial", "rtu+tcp", "modules",
                        *(ep.name for ep in entry_points(group="millctl.boards"))})
        raise BoardConfigError(f"unknown board type {scheme!r}; known: {', '.join(known)}") from None


def open_board(url: str, context: BoardContext | None = None) -> Board:
    """Build (not yet open) the board for `url`."""
    parsed = BoardURL.parse(url)
    return _find_factory(parsed.scheme)(parsed, context or BoardContext())
