"""Helpers for the MQTT tests: a real mosquitto on a free port, and a collecting subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from controller.core.loop import ControlLoop
from controller.runtime import RunOptions, RunResult, run_controller
from controller.services.core_link.in_process import InProcessCore
from controller.services.core_view import CoreView
from controller.services.telemetry.outbox import Outbox
from controller.services.telemetry.service import MqttTelemetry
from controller.settings.machine import MachineConfig

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """A mosquitto process with its own config, persistence and port (restartable)."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    listener_lines: str = "allow_anonymous true\n"  # replaced for password / TLS brokers

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        conf = self.directory / "mosquitto.conf"
        # As root mosquitto would switch to user "mosquitto", who cannot read pytest's tmp dirs.
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"{user}listener {self.port} 127.0.0.1\n"
            f"{self.listener_lines}"
            # Without it pipelined QoS 1 is ~8x slower (bench/RESULTS.md).
            "set_tcp_nodelay true\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            "autosave_interval 0\n"
            "max_queued_messages 100000\n"
            f"log_dest file {self.directory}/mosquitto.log\n")
        return conf

    def start(self) -> None:
        conf = self.write_config()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                log = (self.directory / "mosquitto.log").read_text(errors="replace")
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}):\n{log}")
            time.sleep(0.02)
        raise TimeoutError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto for one test."""
    directory = tmp_path / "broker"
    directory.mkdir()
    b = Broker(directory)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


class Collector:
    """Subscribes to filters and keeps every message, in order."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._new = asyncio.Event()

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    async def wait_for(self, topic: str, count: int = 1, timeout_s: float = 10.0,
                       payload: bytes | None = None) -> list[Received]:
        async with asyncio.timeout(timeout_s):
            while True:
                found = [m for m in self.on(topic) if payload is None or m.payload == payload]
                if len(found) >= count:
                    return found
                self._new.clear()
                await self._new.wait()

    def add(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self.messages.append(Received(str(message.topic), payload, bool(message.retain)))
        self._new.set()


@contextlib.asynccontextmanager
async def collecting(port: int, filters: list[str], identifier: str | None = None,
                     clean_session: bool = True) -> AsyncIterator[tuple[aiomqtt.Client, Collector]]:
    """A client subscribed to `filters` whose messages land in a Collector."""
    collector = Collector()
    async with aiomqtt.Client("127.0.0.1", port, identifier=identifier,
                              clean_session=clean_session) as client:
        for f in filters:
            await client.subscribe(f, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                collector.add(message)

        task = asyncio.create_task(pump())
        try:
            yield client, collector
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


def mqtt_config(broker: Broker, **mqtt: object) -> MachineConfig:
    """The default machine config with MQTT on `broker` (fast reconnects for tests)."""
    section = {"enabled": True, "host": "127.0.0.1", "port": broker.port,
               "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, **mqtt}
    return MachineConfig.model_validate({"mqtt": section})


class LoopHolder:
    """A runtime service that hands the test the running ControlLoop."""

    def __init__(self) -> None:
        self.loop: ControlLoop | None = None
        self.ready = asyncio.Event()

    async def __call__(self, core: CoreView) -> None:
        assert isinstance(core, InProcessCore)  # in-process: the test reads the loop itself
        self.loop = core.loop
        self.ready.set()
        await asyncio.Event().wait()


def start_controller(config: MachineConfig, data_dir: Path, duration_s: float, runner: str = "steady:2.5",
                     **sim_options: object) -> tuple[asyncio.Task[RunResult], MqttTelemetry, LoopHolder]:
    """Run the controller (sim board, real time) with MQTT in a background task."""
    telemetry = MqttTelemetry(config.mqtt, Outbox(data_dir / "outbox.sqlite3"))
    holder = LoopHolder()
    options = RunOptions(runner=runner, duration_s=duration_s, speedup=1.0, sim_options=sim_options)
    task = asyncio.create_task(run_controller(config, options, [telemetry, holder]))
    return task, telemetry, holder
