"""Credentials and TLS from the `--mqtt` URL, against a mosquitto that demands them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mqtt_helpers import Broker, mqtt_config, start_controller

from controller.settings.mqtt import MqttSection


@pytest.fixture
def secure_broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    """mosquitto with a password file and a TLS listener (self-signed cert for 127.0.0.1)."""
    d = tmp_path / "secure"
    d.mkdir()
    passwd = d / "passwd"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "desk", "s3cret"], check=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    b = Broker(d, listener_lines=(f"allow_anonymous false\npassword_file {passwd}\n"
                                  f"certfile {cert}\nkeyfile {key}\n"))
    b.start()
    try:
        yield b, cert
    finally:
        b.stop()


async def test_mqtts_url_with_user_and_password_connects(secure_broker: tuple[Broker, Path], tmp_path: Path) -> None:
    broker, cert = secure_broker
    section = MqttSection(ca_file=str(cert), reconnect_min_s=0.1, reconnect_max_s=0.5).with_url(
        f"mqtts://desk:s3cret@127.0.0.1:{broker.port}")
    config = mqtt_config(broker).model_copy(update={"mqtt": section})
    task, telemetry, _holder = start_controller(config, tmp_path, duration_s=1.5)
    await task
    assert telemetry.connections == 1 and telemetry.batches_sent >= 2
    assert telemetry.outbox.count_pending() == 0


@pytest.mark.realtime
@pytest.mark.parametrize("userinfo", ["desk:wrong@", ""])
async def test_refused_login_keeps_retrying_and_the_summary_waits(secure_broker: tuple[Broker, Path],
                                                                  tmp_path: Path, userinfo: str) -> None:
    broker, cert = secure_broker
    section = MqttSection(ca_file=str(cert), reconnect_min_s=0.1, reconnect_max_s=0.2).with_url(
        f"mqtts://{userinfo}127.0.0.1:{broker.port}")
    config = mqtt_config(broker).model_copy(update={"mqtt": section})
    task, telemetry, _holder = start_controller(config, tmp_path, duration_s=1.5)
    result = await task
    assert telemetry.connections == 0 and telemetry.connect_failures >= 2
    assert sum(m.topic.endswith("/session") for m in telemetry.outbox.pending()) == 1  # kept for the next connection
    assert result.loop.stats.cycles >= 140
