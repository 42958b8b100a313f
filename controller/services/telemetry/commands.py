"""Remote commands: `cmd/<name>` in, `cmd/<name>/ack` out.

Every command is validated (pydantic) and handed to `ControlLoop.execute`, the same path
as every other interface, so the session rules and the setpoint guard still apply. Each
kind of refusal gets an ack with `ok: false`, an `error_kind` and a message, and changes
nothing: unparseable payload, another machine's name, an unknown command, invalid fields
(e.g. a level out of range), or a command the session's state does not allow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from controller.core.commands import COMMAND_NAMES, Command, CommandResult
from controller.services.telemetry.payloads import CommandAck, CommandRequest

_COMMAND_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)


def _first_errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        where = ".".join(str(p) for p in e["loc"] if p not in COMMAND_NAMES) or "payload"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def handle_command(execute: Callable[[Any], CommandResult], machine: str, name: str, payload: bytes,
                   state: str, retained: bool = False) -> CommandAck:
    """Validate one command message and run it through `execute` (ControlLoop.execute)."""
    def refuse(kind: str, error: str, correlation_id: str | None) -> CommandAck:
        return CommandAck(correlation_id=correlation_id, command=name, machine=machine, ok=False,
                          error=error, error_kind=kind, state=state)  # type: ignore[arg-type]

    try:
        raw = json.loads(payload.decode("utf-8")) if payload else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return refuse("bad_payload", f"payload is not JSON: {exc}", None)
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
        return refuse("wrong_machine", f"command addressed to machine {request.machine!r}, this is {machine!r}",
                      request.correlation_id)
    if name not in COMMAND_NAMES:
        return refuse("unknown_command", f"unknown command {name!r}; available: {', '.join(COMMAND_NAMES)}",
                      request.correlation_id)
    fields = {k: v for k, v in (request.model_extra or {}).items()}
    try:
        command = _COMMAND_ADAPTER.validate_python({**fields, "name": name})
    except ValidationError as exc:
        return refuse("invalid", _first_errors(exc), request.correlation_id)
    result: CommandResult = execute(command)
    if not result.ok:
        return refuse("refused", result.error or "refused", request.correlation_id).model_copy(
            update={"state": result.state})
    return CommandAck(correlation_id=request.correlation_id, command=name, machine=machine, ok=True,
                      state=result.state)
