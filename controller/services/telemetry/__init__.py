"""MQTT telemetry, remote control and the fleet view (see docs/mqtt.md).

Modules (the `[mqtt]` config section lives in `controller.settings.mqtt`): `topics` (the topic tree),
`payloads` (the documented messages and their JSON Schema), `outbox` (SQLite: session
summaries kept until the broker acknowledged them), `dropqueue`, `commands` (validation and
acks), `discovery` (Home Assistant), `service` (`MqttTelemetry`, the runtime service),
`fleet` (following every machine on a broker), `sim_fleet` (N simulated machines in one
process). Nothing is imported here: `controller.settings.machine` imports `config` and must not pull
in the loop.
"""
