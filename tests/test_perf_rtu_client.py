"""The lean RTU master (drivers/rtu_client.py) against a scripted device on a real socket.

Each test's device is a TCP server (as a serial device server carrying RTU frames is) that
records the frames it receives and answers with the bytes the test chose: whole, in pieces,
corrupted, from another device, or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerRTU

from drivers.errors import BoardTimeout, LinkLost, ModbusExceptionReply
from drivers.modbus import modbus_call
from drivers.rtu_client import RtuClient, SerialLine

Answer = Callable[[bytes], list[bytes]]


def with_crc(body: bytes) -> bytes:
    return body + FramerRTU.compute_CRC(body).to_bytes(2, "big")


#: Device 1 answers a read of one holding register with the value 42.
ONE_REGISTER_42 = with_crc(bytes([1, 3, 2, 0, 42]))


@asynccontextmanager
async def device(answer: Answer, timeout_s: float = 0.5) -> AsyncIterator[tuple[RtuClient, list[bytes]]]:
    """A client connected to a device that answers each received chunk with `answer(chunk)`,
    the pieces written with a pause between them."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(256):
            received.append(chunk)
            for piece in answer(chunk):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.005)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = RtuClient(SerialLine(host="127.0.0.1", port=port), timeout_s)
    try:
        assert await client.connect()
        yield client, received
    finally:
        client.close()
        server.close()
        await server.wait_closed()


async def test_request_is_the_textbook_frame_and_the_reply_is_decoded() -> None:
    async with device(lambda _: [ONE_REGISTER_42]) as (client, received):
        reply = await client.read_holding_registers(0, count=10, device_id=1)
    # Modbus over Serial Line spec, a read of 10 holding registers from 0 at device 1.
    assert received == [bytes.fromhex("01030000000ac5cd")]
    assert reply.registers == [42] and not reply.isError()


async def test_a_reply_in_pieces_is_put_together() -> None:
    async with device(lambda _: [ONE_REGISTER_42[:2], ONE_REGISTER_42[2:5], ONE_REGISTER_42[5:]]) as (client, _):
        reply = await client.read_holding_registers(0, count=1, device_id=1)
    assert reply.registers == [42]


async def test_a_bad_crc_fails_at_once_not_at_the_timeout() -> None:
    garbled = ONE_REGISTER_42[:4] + bytes([ONE_REGISTER_42[4] ^ 0x5A]) + ONE_REGISTER_42[5:]
    answers = iter([[garbled], [ONE_REGISTER_42]])
    async with device(lambda _: next(answers), timeout_s=5.0) as (client, _):
        started = asyncio.get_running_loop().time()
        with pytest.raises(ModbusIOException, match="bad CRC"):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert asyncio.get_running_loop().time() - started < 1.0
        # The line is still usable: the next request is answered as usual.
        assert (await client.read_holding_registers(0, count=1, device_id=1)).registers == [42]


async def test_another_devices_reply_fails_without_waiting_for_the_timeout() -> None:
    foreign = with_crc(bytes([7, 3, 2, 0, 1]))
    async with device(lambda _: [foreign], timeout_s=5.0) as (client, _):
        started = asyncio.get_running_loop().time()
        with pytest.raises(ModbusIOException, match="not from device 1"):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert asyncio.get_running_loop().time() - started < 1.0


async def test_line_noise_longer_than_any_frame_fails_without_waiting_for_the_timeout() -> None:
    # 0x55 0x55 …: no function code, so no frame can start anywhere in it.
    async with device(lambda _: [bytes([0x55]) * 300], timeout_s=5.0) as (client, _):
        started = asyncio.get_running_loop().time()
        with pytest.raises(ModbusIOException, match="300 bytes of line noise"):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert asyncio.get_running_loop().time() - started < 1.0


async def test_an_exception_reply_becomes_a_typed_board_error() -> None:
    illegal_address = with_crc(bytes([1, 0x83, 2]))
    async with device(lambda _: [illegal_address]) as (client, _):
        with pytest.raises(ModbusExceptionReply) as caught:
            await modbus_call("rtu+tcp://test", 1, "read register 9999",
                              lambda: client.read_holding_registers(9999, count=1, device_id=1))
    assert caught.value.function_code == 3 and caught.value.exception_code == 2
    assert "illegal data address" in str(caught.value)


async def test_a_reply_to_another_function_is_refused() -> None:
    write_echo = with_crc(bytes([1, 6, 0, 1, 0, 5]))
    async with device(lambda _: [write_echo]) as (client, _):
        with pytest.raises(ModbusIOException, match="function 6 for a request of function 3"):
            await client.read_holding_registers(0, count=1, device_id=1)


async def test_silence_is_a_timeout_and_the_next_request_still_works() -> None:
    answers = iter([[], [ONE_REGISTER_42]])
    async with device(lambda _: next(answers), timeout_s=0.1) as (client, _):
        with pytest.raises(BoardTimeout, match=r"no valid reply within 0\.1 s"):
            await modbus_call("rtu+tcp://test", 1, "read",
                              lambda: client.read_holding_registers(0, count=1, device_id=1))
        reply = await client.read_holding_registers(0, count=1, device_id=1)
    assert reply.registers == [42]


async def test_a_device_server_that_hangs_up_is_a_lost_link() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(256)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    client = RtuClient(SerialLine(host="127.0.0.1", port=server.sockets[0].getsockname()[1]), 5.0)
    await client.connect()
    with pytest.raises(LinkLost, match="closed by the other end"):
        await modbus_call("rtu+tcp://test", 1, "read", lambda: client.read_holding_registers(0, count=1, device_id=1))
    assert not client.connected
    with pytest.raises(ConnectionException, match="not open"):
        await client.read_holding_registers(0, count=1, device_id=1)
    server.close()
    await server.wait_closed()


async def test_nobody_listening_is_an_os_error_naming_the_address() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = RtuClient(SerialLine(host="127.0.0.1", port=port), 0.5)
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        await client.connect()
