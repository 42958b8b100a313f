"""Technician endpoints: decoded registers, faults (and clearing them), calibration history.

Every handler here requires the technician token from the machine config (`[web]
technician_token`), sent as the `X-Technician-Token` header. Without a configured token
they answer 503 (locked); with a wrong or missing token 401. Calibration and limits are
read-only here: they change only through `millctl calibrate` and the config file.
"""

from __future__ import annotations

import getpass
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from drivers.registers import FaultCode

if TYPE_CHECKING:
    from controller.core.loop import ControlLoop

TOKEN_HEADER = "X-Technician-Token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_token(token: str | None, handler: Handler) -> Handler:
    """Wrap a handler so it runs only with the right token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if token is None:
            return web.json_response({"error": "technician access is locked: set [web] technician_token "
                                               "in the machine config"}, status=503)
        given = request.headers.get(TOKEN_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response({"error": "technician token missing or wrong"}, status=401)
        return await handler(request)

    return guarded


def decoded_registers(loop: ControlLoop) -> dict[str, Any]:
    """The board's registers as last read by the loop (no extra bus traffic) and as commanded."""
    snap = loop.latest
    rmap = loop.board.register_map
    rows: list[dict[str, Any]] = []
    if snap is not None:
        s = snap.sample
        meaning = {
            "status": ", ".join(s.status_names()) or "all clear",
            "fault_code": FaultCode(s.fault_code).description if s.fault_code in FaultCode._value2member_map_
            else f"unknown fault {s.fault_code}",
            "fw_version": s.fw_version_text,
            "heart_rate_bpm": "no signal" if s.heart_rate_bpm is None else "",
            "handle_force_n": "load cell not fitted" if s.handle_force_n is None else "",
        }
        for f in rmap.input_fields:
            value = getattr(s, f.name)
            rows.append({"table": "input", "name": f.name, "address": f.address,
                         "value": int(value) if f.name == "status" else value, "unit": f.unit,
                         "meaning": meaning.get(f.name) or f.description})
    command = loop._command  # what the loop writes next cycle
    settings = loop.board_settings()
    commanded = {"brake_setpoint_ma": command.brake_setpoint_ma, "control": command.control_bits,
                 "watchdog_ms": settings.watchdog_ms, "safe_brake_ma": settings.safe_brake_ma,
                 "ramp_ma_per_s": settings.ramp_ma_per_s}
    for f in rmap.holding_fields:
        if f.name in commanded:
            rows.append({"table": "holding", "name": f.name, "address": f.address, "value": commanded[f.name],
                         "unit": f.unit, "meaning": f.description})
    return {"board": loop.board.url, "link_ok": snap is not None and snap.link_ok, "rows": rows}


def faults(loop: ControlLoop) -> dict[str, Any]:
    safety = loop.safety
    log = safety.fault_log
    return {"active": [r.as_dict() for r in safety.active_records()], "brake_inhibited": safety.brake_inhibited,
            "this_run": list(loop.faults)[-50:],
            "latched": log.latched() if log is not None else [],
            "log": str(log.path) if log is not None else None}


def clear_faults(loop: ControlLoop, by: str) -> dict[str, Any]:
    log = loop.safety.fault_log
    if log is None:
        return {"cleared": [], "note": "no fault log in this run (no data directory)"}
    cleared = log.clear(by)
    return {"cleared": [e.get("code") for e in cleared]}


def calibration(data_dir: Path | None) -> dict[str, Any]:
    """Active calibration version and the stored history (read-only)."""
    if data_dir is None:
        return {"active": None, "history": [], "note": "no data directory"}
    try:
        from controller.calibration.store import CalibrationStore
    except ImportError:  # calibration not in this build
        return {"active": None, "history": [], "note": "calibration is not available in this build"}
    store = CalibrationStore(data_dir)
    history = []
    for version in store.versions():
        try:
            meta = store.load(version).meta.get("calibration", {})
        except Exception as exc:  # a bad file is shown, not fatal: the technician must see it
            meta = {"error": str(exc)}
        history.append({"version": version, **{k: meta.get(k) for k in
                                              ("created_at", "method", "based_on", "note", "error") if k in meta}})
    return {"active": store.active_version() or "nominal", "history": history}


def routes(loop: ControlLoop, token: str | None, data_dir: Path | None) -> list[web.RouteDef]:
    async def registers(_: web.Request) -> web.StreamResponse:
        return web.json_response(decoded_registers(loop))

    async def get_faults(_: web.Request) -> web.StreamResponse:
        return web.json_response(faults(loop), dumps=_dumps)

    async def post_clear(request: web.Request) -> web.StreamResponse:
        return web.json_response(clear_faults(loop, f"technician via console ({request.remote or getpass.getuser()})"))

    async def get_calibration(_: web.Request) -> web.StreamResponse:
        return web.json_response(calibration(data_dir))

    async def check(_: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    return [web.get("/api/tech/check", require_token(token, check)),
            web.get("/api/tech/registers", require_token(token, registers)),
            web.get("/api/tech/faults", require_token(token, get_faults)),
            web.post("/api/tech/faults/clear", require_token(token, post_clear)),
            web.get("/api/tech/calibration", require_token(token, get_calibration))]


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
