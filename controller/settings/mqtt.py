"""The `[mqtt]` section of the machine config, and the `--mqtt URL` that overrides it.

`mqtt://[user:pass@]host[:port]` connects in the clear (default port 1883), `mqtts://` with
TLS (default port 8883). Credentials in the URL win over the config file's; everything else
(prefix, rates, queue sizes, Home Assistant discovery) comes from the config.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

_TOPIC_LEVEL = r"^[^/#+\s]+(/[^/#+\s]+)*$"


class MqttUrlError(ValueError):
    """A `--mqtt` URL that cannot be used; the message shows the accepted form."""


class MqttSection(BaseModel):
    """Where the broker is, how to log in, and how the machine publishes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    host: Annotated[str, Field(min_length=1, max_length=255)] = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # None: 1883, or 8883 with TLS
    tls: bool = False
    ca_file: str | None = None  # None with tls: the system's trusted CAs
    tls_insecure: bool = False  # skip host-name checks (test brokers with self-signed certs)
    username: str | None = None
    password: str | None = None
    prefix: Annotated[str, Field(pattern=_TOPIC_LEVEL)] = "gym/v1"
    telemetry_hz: Annotated[float, Field(gt=0, le=50)] = 2.0
    sample_hz: Annotated[float, Field(gt=0, le=100)] = 10.0
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 15
    queue_size: Annotated[int, Field(ge=1, le=100_000)] = 120  # telemetry batches held while offline
    event_queue_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    reconnect_min_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    reconnect_max_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    ha_discovery: bool = False
    ha_prefix: Annotated[str, Field(pattern=_TOPIC_LEVEL)] = "homeassistant"

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttSection:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(f"reconnect_max_s ({self.reconnect_max_s}) must not be below "
                             f"reconnect_min_s ({self.reconnect_min_s})")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls else 1883)

    def with_url(self, url: str) -> MqttSection:
        """This section with the broker, TLS and credentials from `url`; enabled."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise MqttUrlError(f"bad MQTT URL {url!r}: expected mqtt://[user:pass@]host[:port] "
                               "or mqtts://... for TLS")
        try:
            port = parts.port
        except ValueError:
            raise MqttUrlError(f"bad MQTT URL {url!r}: the port must be a number 1..65535") from None
        update: dict[str, object] = {"enabled": True, "host": parts.hostname,
                                     "tls": parts.scheme == "mqtts", "port": port}
        if parts.username:
            update["username"] = unquote(parts.username)
            update["password"] = unquote(parts.password) if parts.password is not None else None
        return self.model_validate({**self.model_dump(), **update})
