"""Remote commands: `cmd/<name>` in, `cmd/<name>/ack` out.

Every command is validated (pydantic) and handed to the core's `execute` (`CoreView`), the same path
as every other interface, so the session rules and the setpoint guard still apply. Each
kind of refusal gets an ack with `ok: false`, an `error_kind` and a message, and changes
nothing: unparseable payload, another machine's name, an unknown command, invalid fields
(e.g. a level out of range), or a command the session's state does not allow.

Payloads are parsed with bounds (controller/services/bounded_json.py): a few kB, a few
levels deep, short numbers. An error ack quotes at most a short excerpt of the payload, so
a 30 MB command never comes back as a 30 MB ack, and no payload can stop the service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from controller.core.commands import COMMAND_NAMES, Command, CommandResult
from controller.services.bounded_json import BadJson, JsonLimits, excerpt, loads_bounded
from controller.services.telemetry.payloads import CommandAck, CommandRequest

log = logging.getLogger(__name__)
_COMMAND_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)
#: A command is a few hundred bytes; mosquitto's `message_size_limit` can drop bigger ones
#: at the broker already (config/mosquitto/millctl.conf.example).
MQTT_COMMAND_LIMITS = JsonLimits(max_bytes=4096, max_depth=4)
#: Longest command name echoed in an ack (the name comes from the topic).
_MAX_NAME_CHARS = 32


def _first_errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e["loc"] if p not in COMMAND_NAMES) or "payload"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


async def handle_command(execute: Callable[[Any], Awaitable[CommandResult]], machine: str, name: str,
                         payload: bytes, state: str, retained: bool = False) -> CommandAck:
    """Validate one command message and run it through `execute` (the core's, `CoreView.execute`).

    Never raises: whatever arrives, the answer is an ack and the service goes on."""
    shown_name = name if len(name) <= _MAX_NAME_CHARS else name[:_MAX_NAME_CHARS] + "…"
    try:
        return await _handle(execute, machine, name, shown_name, payload, state, retained)
    except Exception:
        log.exception("MQTT command %r failed", shown_name)
        return CommandAck(correlation_id=None, command=shown_name, machine=machine, ok=False,
                          error="internal error; see the machine's log", error_kind="refused", state=state)


async def _handle(execute: Callable[[Any], Awaitable[CommandResult]], machine: str, name: str, shown_name: str,
                  payload: bytes, state: str, retained: bool) -> CommandAck:
    def refuse(kind: str, error: str, correlation_id: str | None) -> CommandAck:
        return CommandAck(correlation_id=correlation_id, command=shown_name, machine=machine, ok=False,
                          error=error, error_kind=kind, state=state)  # type: ignore[arg-type]

    try:
        raw = loads_bounded(payload, MQTT_COMMAND_LIMITS) if payload else {}
    except BadJson as exc:
        return refuse("bad_payload", f"payload refused: {exc}; it starts {excerpt(payload)!r}", None)
    if not isinstance(raw, dict):
        return refuse("bad_payload", "payload must be a JSON object with a correlation_id", None)
    correlation = raw.get("correlation_id")
    correlation_id = str(correlation) if isinstance(correlation, str | int) else None
    try:
        request = CommandRequest.model_validate(raw)
    except ValidationError as exc:
        return refuse("bad_payload", _first_errors(exc), correlation_id)
    if retained:
        return refuse("bad_payload", "retained commands are ignored (publish commands with retain=false)",
                      request.correlation_id)
    if request.machine is not None and request.machine != machine:
        return refuse("wrong_machine", f"command addressed to machine {request.machine[:64]!r}, this is {machine!r}",
                      request.correlation_id)
    if name not in COMMAND_NAMES:
        return refuse("unknown_command", f"unknown command {shown_name!r}; available: {', '.join(COMMAND_NAMES)}",
                      request.correlation_id)
    fields = {k: v for k, v in (request.model_extra or {}).items()}
    try:
        command = _COMMAND_ADAPTER.validate_python({**fields, "name": name})
    except ValidationError as exc:
        return refuse("invalid", _first_errors(exc), request.correlation_id)
    result: CommandResult = await execute(command)
    if not result.ok:
        return refuse("refused", result.error or "refused", request.correlation_id).model_copy(
            update={"state": result.state})
    return CommandAck(correlation_id=request.correlation_id, command=shown_name, machine=machine, ok=True,
                      state=result.state)
