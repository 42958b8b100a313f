"""The FTMS server (and Running Speed and Cadence beside it) on a real Bluetooth adapter,
through `bless` (optional: `pip install 'millctl[ble]'`), and `ftms_service`, the service
`millctl run --ftms` runs beside the loop.

Without bless, without D-Bus/BlueZ, or without an adapter, the service says so once, clearly,
and returns: the controller keeps running, only the apps cannot see it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

from controller.runtime import Service
from controller.services.core_view import CoreView
from controller.services.ftms.peripheral import (
    CONTROL_POINT,
    FTMS_SERVICE,
    MACHINE_STATUS,
    READ_ONLY,
    RSC_FEATURE,
    RSC_MEASUREMENT,
    RSC_SERVICE,
    TREADMILL_DATA,
    FtmsPeripheral,
)

log = logging.getLogger(__name__)

#: Seconds to wait for D-Bus/BlueZ to answer before declaring Bluetooth unavailable.
START_TIMEOUT_S = 10.0


class BleUnavailable(RuntimeError):
    """No usable Bluetooth: bless missing, no D-Bus/BlueZ, or no adapter."""


class BlessTransport:
    """`GattTransport` on bless (BlueZ on Linux, CoreBluetooth, WinRT)."""

    def __init__(self, adapter: str | None = None) -> None:
        self.adapter = adapter
        self._server: Any = None

    async def start(self, name: str, read_values: dict[str, bytes],
                    on_write: Callable[[str, bytes], None]) -> None:
        try:
            # bless's __init__ is untyped (`# type: ignore`): import it as Any.
            bless: Any = importlib.import_module("bless")
        except ImportError as exc:
            raise BleUnavailable("the Bluetooth extra is not installed: pip install 'millctl[ble]'") from exc
        props, perms = bless.GATTCharacteristicProperties, bless.GATTAttributePermissions
        try:
            kwargs = {"adapter": self.adapter} if self.adapter else {}
            server = bless.BlessServer(name=name, loop=asyncio.get_running_loop(), **kwargs)
            server.read_request_func = lambda characteristic, **_: characteristic.value
            server.write_request_func = lambda characteristic, value, **_: on_write(
                str(characteristic.uuid).lower(), bytes(value))
            await asyncio.wait_for(self._build(server, read_values, props, perms), START_TIMEOUT_S)
        except Exception as exc:  # bless raises plain Exception / D-Bus errors / OSError
            raise BleUnavailable(_explain(exc)) from exc
        self._server = server

    @staticmethod
    async def _build(server: Any, read_values: dict[str, bytes], props: Any, perms: Any) -> None:
        await server.add_new_service(FTMS_SERVICE)
        for uuid in READ_ONLY:
            await server.add_new_characteristic(FTMS_SERVICE, uuid, props.read, bytearray(read_values[uuid]),
                                                perms.readable)
        for uuid in (TREADMILL_DATA, MACHINE_STATUS):
            await server.add_new_characteristic(FTMS_SERVICE, uuid, props.notify, None, perms.readable)
        await server.add_new_characteristic(FTMS_SERVICE, CONTROL_POINT, props.write | props.indicate, None,
                                            perms.writeable)
        # Running Speed and Cadence beside it (docs/ftms.md): feature read-only, measurement notified.
        await server.add_new_service(RSC_SERVICE)
        await server.add_new_characteristic(RSC_SERVICE, RSC_FEATURE, props.read, bytearray(read_values[RSC_FEATURE]),
                                            perms.readable)
        await server.add_new_characteristic(RSC_SERVICE, RSC_MEASUREMENT, props.notify, None, perms.readable)
        await server.start()

    def notify(self, char_uuid: str, value: bytes) -> None:
        if self._server is None:
            return
        characteristic = self._server.get_characteristic(char_uuid)
        characteristic.value = bytearray(value)
        self._server.update_value(RSC_SERVICE if char_uuid == RSC_MEASUREMENT else FTMS_SERVICE, char_uuid)

    async def stop(self) -> None:
        if self._server is not None:
            try:
                await self._server.stop()
            except Exception as exc:  # on the way out, never hide the session report
                log.warning("FTMS: could not stop advertising cleanly: %s", exc)
            self._server = None


def _explain(exc: Exception) -> str:
    """What a technician should check, from the error bless passed on."""
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return (f"cannot reach BlueZ: the system D-Bus is not running ({exc}); start dbus and bluetoothd "
                f"(systemctl start bluetooth)")
    if isinstance(exc, TimeoutError):
        return f"BlueZ did not answer within {START_TIMEOUT_S:.0f} s (is bluetoothd hung?)"
    return f"no usable Bluetooth adapter ({type(exc).__name__}: {exc}); check `bluetoothctl list`"


def ftms_service(adapter: str | None = None) -> Service:
    """A runtime service serving FTMS over Bluetooth; returns quietly (after one clear
    warning) when Bluetooth is not available, so the controller keeps running."""

    async def serve(core: CoreView) -> None:
        peripheral = FtmsPeripheral(core, BlessTransport(adapter))
        try:
            await peripheral.run()
        except BleUnavailable as exc:
            log.warning("FTMS Bluetooth off: %s — the controller keeps running without it.", exc)

    return serve
