"""The bus budget of a serial (RS-485) link: how many control cycles per second it can carry.

One control cycle is one function-23 exchange (write setpoint + control, read the input
mirror; see docs/board.md). On the wire every byte is a character of start bit, 8 data bits,
an optional parity bit and a stop bit, and Modbus RTU needs at least 3.5 characters of
silence after each frame before the next one may start. A loop rate whose exchanges need
more time than the period cannot be served by any board at that baud rate: the controller
refuses it at start, and warns when the bus is loaded beyond WARN_SHARE (no room left for a
retry or a slow board).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from drivers.errors import BoardConfigError

log = logging.getLogger(__name__)

#: Start bit + 8 data bits + stop bit (8N1); a parity bit adds one.
BITS_PER_CHARACTER_8N1 = 10
#: Modbus RTU's minimum silence between frames, in characters.
INTER_FRAME_GAP_CHARACTERS = 3.5
#: Above this share of the bus the controller warns: no room for a retry or a slow turnaround.
WARN_SHARE = 0.70

# Function 23 framing (Modbus application protocol §6.17), RTU: device id, function code and
# a 2-byte CRC around the PDU.
_RTU_OVERHEAD_BYTES = 1 + 1 + 2
_FC23_REQUEST_FIXED_BYTES = 2 + 2 + 2 + 2 + 1  # read address, read count, write address, write count, byte count
_FC23_RESPONSE_FIXED_BYTES = 1  # byte count


def character_time_s(baud: int, parity: str = "N") -> float:
    """Time one character takes on the wire at `baud` (8 data bits, 1 stop bit)."""
    bits = BITS_PER_CHARACTER_8N1 + (0 if parity.upper() == "N" else 1)
    return bits / baud


def fc23_request_bytes(write_count: int) -> int:
    """Bytes of a function-23 request frame writing `write_count` registers."""
    return _RTU_OVERHEAD_BYTES + _FC23_REQUEST_FIXED_BYTES + 2 * write_count


def fc23_response_bytes(read_count: int) -> int:
    """Bytes of a function-23 response frame carrying `read_count` registers."""
    return _RTU_OVERHEAD_BYTES + _FC23_RESPONSE_FIXED_BYTES + 2 * read_count


@dataclass(frozen=True)
class BusBudget:
    """One exchange per cycle at `rate_hz` on a bus at `baud`."""

    baud: int
    rate_hz: float
    exchange_bytes: int  # request + response
    exchange_s: float  # both frames and their inter-frame gaps

    @property
    def share(self) -> float:
        """Share of the bus the loop uses (1.0 = every moment of every period)."""
        return self.exchange_s * self.rate_hz

    @property
    def max_rate_hz(self) -> int:
        """The largest whole loop rate whose exchanges fit on this bus."""
        return math.floor(1.0 / self.exchange_s)

    def describe(self) -> str:
        return (f"{self.rate_hz:g} Hz × {self.exchange_bytes} bytes per function-23 exchange "
                f"({self.exchange_s * 1000:.2f} ms with the inter-frame gaps) at {self.baud} baud "
                f"uses {self.share * 100:.0f} % of the bus")


def bus_budget(baud: int, rate_hz: float, read_count: int, write_count: int = 2,
               parity: str = "N") -> BusBudget:
    """The budget of one function-23 exchange per cycle."""
    if baud <= 0:
        raise BoardConfigError(f"baud rate {baud} must be positive")
    exchange_bytes = fc23_request_bytes(write_count) + fc23_response_bytes(read_count)
    characters = exchange_bytes + 2 * INTER_FRAME_GAP_CHARACTERS
    return BusBudget(baud, rate_hz, exchange_bytes, characters * character_time_s(baud, parity))


class BusOverBudget(BoardConfigError):
    """The loop rate asks for more exchanges per second than the serial bus can carry."""


def check_bus_budget(budget: BusBudget, url: str) -> None:
    """Refuse a rate that does not fit on the bus; warn above WARN_SHARE of it."""
    if budget.share > 1.0:
        raise BusOverBudget(
            f"{url}: a loop rate of {budget.rate_hz:g} Hz does not fit on a {budget.baud} baud bus "
            f"({budget.describe()}); the largest rate that fits is {budget.max_rate_hz} Hz — lower "
            f"the loop rate (`millctl run --rate-hz`, or [loop] rate_hz in the config) or raise the "
            f"board's baud rate")
    if budget.share > WARN_SHARE:
        log.warning("%s: %s (above %.0f %%): a retry or a slow board reply will miss a cycle",
                    url, budget.describe(), WARN_SHARE * 100)
