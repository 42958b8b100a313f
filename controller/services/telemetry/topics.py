"""The topic tree: `<prefix>/<site>/<machine>/…`, default prefix `gym/v1`.

| topic | retained | QoS | payload |
|---|---|---|---|
| `status` | yes | 1 | `online` / `offline` (plain text; `offline` is also the last will) |
| `state` | yes | 1 | `StatePayload` |
| `telemetry` | no | 0 | `TelemetryBatch` |
| `event` | no | 1 | `EventPayload` |
| `session` | no | 1 | `controller.core.summary.SessionSummary` |
| `records` | no | 1 | `SessionRecords` (a finished session's 1 Hz records, chunked, before its summary) |
| `cmd/<name>` | no | 1 | `CommandRequest` (in) |
| `cmd/<name>/ack` | no | 1 | `CommandAck` (out) |

Per site, published by the gym hub and read by every machine's console:

| topic | retained | QoS | payload |
|---|---|---|---|
| `<prefix>/<site>/athletes` | yes | 1 | `RosterPayload` (the athletes a console lists at sign-in) |
| `<prefix>/<site>/class/<id>/leaderboard` | yes | 0 | `LeaderboardPayload` (live ranks of a class) |
"""

from __future__ import annotations

from dataclasses import dataclass

ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class MachineTopics:
    """Every topic of one machine."""

    prefix: str
    site: str
    machine: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.machine}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def session(self) -> str:
        return f"{self.base}/session"

    @property
    def records(self) -> str:
        return f"{self.base}/records"

    @property
    def cmd_filter(self) -> str:
        """Subscription for every command addressed to this machine."""
        return f"{self.base}/cmd/+"

    @property
    def roster(self) -> str:
        """The site's athlete roster (retained, from the hub)."""
        return f"{self.prefix}/{self.site}/athletes"

    @property
    def leaderboard_filter(self) -> str:
        """Every class leaderboard of the site."""
        return f"{self.prefix}/{self.site}/class/+/leaderboard"

    def leaderboard(self, class_id: str) -> str:
        return f"{self.prefix}/{self.site}/class/{class_id}/leaderboard"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def ack(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/ack"


def fleet_filters(prefix: str, site: str = "+") -> list[str]:
    """Subscriptions that follow every machine's status, state and telemetry."""
    return [f"{prefix}/{site}/+/{leaf}" for leaf in ("status", "state", "telemetry")]


def split_machine_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """`(site, machine, leaf)` of a machine topic under `prefix`, else None."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/", 2)
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]
