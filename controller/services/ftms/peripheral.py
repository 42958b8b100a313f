"""The FTMS GATT server's behaviour, independent of the Bluetooth stack underneath.

A `GattTransport` (the `bless` one in `controller/services/ftms/ble.py`) hosts the characteristics;
`FtmsPeripheral` fills them: Treadmill Data once a second from the core's latest snapshot (split into
20-byte notifications, the default ATT MTU), control point writes answered through
`FtmsControl`, and status notifications from the core's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from controller.core.events import Subscription
from controller.services.core_view import CoreView
from controller.services.ftms.capabilities import Capabilities, capabilities
from controller.services.ftms.codec import (
    DEFAULT_MAX_PAYLOAD,
    encode_feature,
    encode_power_range,
    encode_resistance_range,
    encode_speed_range,
    split_treadmill_data,
)
from controller.services.ftms.control import FtmsControl
from controller.services.ftms.control_codec import ResultCode, encode_response
from controller.services.ftms.rsc import encode_rsc_feature, encode_rsc_measurement, rsc_measurement
from controller.services.ftms.snapshot_data import treadmill_data


def sig_uuid(short: int) -> str:
    """A Bluetooth SIG 16-bit UUID in its 128-bit form (what GATT stacks take)."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


FTMS_SERVICE = sig_uuid(0x1826)
FEATURE = sig_uuid(0x2ACC)
TREADMILL_DATA = sig_uuid(0x2ACD)
SUPPORTED_SPEED_RANGE = sig_uuid(0x2AD4)
SUPPORTED_RESISTANCE_RANGE = sig_uuid(0x2AD6)
SUPPORTED_POWER_RANGE = sig_uuid(0x2AD8)
CONTROL_POINT = sig_uuid(0x2AD9)
MACHINE_STATUS = sig_uuid(0x2ADA)
#: Running Speed and Cadence, served beside FTMS for watches and apps that read a foot pod.
RSC_SERVICE = sig_uuid(0x1814)
RSC_MEASUREMENT = sig_uuid(0x2A53)
RSC_FEATURE = sig_uuid(0x2A54)

#: Characteristics an app reads once (their values never change during a run).
READ_ONLY = (FEATURE, SUPPORTED_SPEED_RANGE, SUPPORTED_RESISTANCE_RANGE, SUPPORTED_POWER_RANGE)
#: Characteristics the server notifies (data, status) or indicates (control point answers).
NOTIFYING = (TREADMILL_DATA, MACHINE_STATUS)

log = logging.getLogger(__name__)


class GattTransport(Protocol):
    """What the FTMS server needs from a Bluetooth stack."""

    async def start(self, name: str, read_values: dict[str, bytes],
                    on_write: Callable[[str, bytes], None]) -> None:
        """Host the FTMS service with these read-only values and advertise it as `name`;
        raise `BleUnavailable` when there is no usable Bluetooth."""

    def notify(self, char_uuid: str, value: bytes) -> None:
        """Send a notification / indication to subscribed apps."""

    async def stop(self) -> None:
        """Stop advertising and remove the service."""


def read_values(caps: Capabilities) -> dict[str, bytes]:
    """The bytes of the read-only characteristics."""
    return {
        FEATURE: encode_feature(caps.machine, caps.targets),
        SUPPORTED_SPEED_RANGE: encode_speed_range(caps.speed_kmh),
        SUPPORTED_RESISTANCE_RANGE: encode_resistance_range(caps.resistance_level),
        SUPPORTED_POWER_RANGE: encode_power_range(caps.power_w),
        RSC_FEATURE: encode_rsc_feature(),
    }


class FtmsPeripheral:
    """FTMS server logic for one machine's core over one transport."""

    def __init__(self, core: CoreView, transport: GattTransport, period_s: float = 1.0,
                 max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.core = core
        self.transport = transport
        self.period_s = period_s
        self.max_payload = max_payload
        self.caps = capabilities(core.info.config)
        self.control = FtmsControl(core, self.caps)
        self.packets_sent = 0
        self._writes: set[asyncio.Task[None]] = set()

    def on_write(self, char_uuid: str, value: bytes) -> None:
        """A write from an app (the transport's callback): only the control point is writable.
        The answer is sent once the core has decided (`handle_write`)."""
        if char_uuid.lower() != CONTROL_POINT:
            log.warning("FTMS: write to %s ignored (only the control point is writable)", char_uuid)
            return
        task = asyncio.get_running_loop().create_task(self.handle_write(bytes(value)))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def handle_write(self, value: bytes) -> None:
        """Answer one control point write: the indication, then any status it caused."""
        try:
            response = await self.control.handle(value)
        except Exception:  # a bug here must not reach the Bluetooth stack's callback
            log.exception("FTMS: control point write %s failed", bytes(value).hex())
            response = encode_response(value[0], ResultCode.OPERATION_FAILED) if value else None
        if response is not None:
            self.transport.notify(CONTROL_POINT, response)
        self.flush_statuses()

    def flush_statuses(self) -> None:
        while self.control.statuses:
            self.transport.notify(MACHINE_STATUS, self.control.statuses.popleft())

    def publish_data(self) -> None:
        """Notify the latest Treadmill Data (nothing before the first cycle and the core's first status)."""
        snapshot = self.core.latest
        # The signed-in athlete's body mass, else the config's default (from the core's status).
        mass_kg = self.core.status.body_mass_kg
        if snapshot is None or mass_kg is None:
            return
        record = treadmill_data(snapshot, mass_kg)
        for packet in split_treadmill_data(record, self.max_payload):
            self.transport.notify(TREADMILL_DATA, packet)
            self.packets_sent += 1
        # RSC Measurement: at most 10 bytes, always one packet
        self.transport.notify(RSC_MEASUREMENT, encode_rsc_measurement(rsc_measurement(snapshot)))

    async def run(self) -> None:
        """Serve until cancelled: data every `period_s` of machine time, statuses as they come."""
        await self.transport.start(self.core.info.config.machine.name, read_values(self.caps), self.on_write)
        subscription = self.core.events.subscribe()
        statuses = asyncio.create_task(self._follow_events(subscription))
        try:
            clock = self.core.clock
            due = clock.now_s() + self.period_s
            while True:
                await clock.sleep_until(due)
                self.publish_data()
                due += self.period_s
        finally:
            statuses.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await statuses
            self.core.events.unsubscribe(subscription)
            await self.transport.stop()

    async def _follow_events(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            self.control.on_event(event)
            self.flush_statuses()
