"""Technician endpoints: decoded registers, faults (and clearing them), calibration history.

Every handler here requires the technician token from the machine config (`[web]
technician_token`, at least 8 characters), sent as the `X-Technician-Token` header or the
`millctl_tech` cookie, never in the URL. Without a configured token they answer 503
(locked); with a wrong or missing token 401; a client that guessed wrong five times in a
row gets 429 until its lockout ends, even with the right token (controller/services/console/auth.py).
Clearing latched faults also needs the code shown on the machine's own terminal.
Calibration and limits are read-only here: they change only through `millctl calibrate`
and the config file.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from controller.core.safety.faults import FaultLog
from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded
from controller.services.console.auth import TECH_COOKIE, TECH_HEADER, ClearCode, Lockout, SecondsClock, same_secret
from drivers.registers import FaultCode

if TYPE_CHECKING:
    from controller.services.core_view import CoreView

TOKEN_HEADER = TECH_HEADER
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CLEAR_LIMITS = JsonLimits(max_bytes=256, max_depth=1)


class TechnicianGate:
    """The technician token check with its per-client lockout."""

    def __init__(self, token: str | None, clock: SecondsClock) -> None:
        self._token = token
        self.lockout = Lockout(clock, "technician token")

    def refusal(self, request: web.Request) -> web.Response | None:
        """The response that refuses this request, or None when the token is right."""
        if self._token is None:
            return web.json_response({"error": "technician access is locked: set [web] technician_token "
                                               "in the machine config"}, status=503)
        client = request.remote or "unknown"
        wait_s = self.lockout.locked_for_s(client)
        if wait_s > 0:
            return web.json_response({"error": f"too many wrong technician tokens: locked out, try again in "
                                               f"{wait_s:.0f} s"}, status=429,
                                     headers={"Retry-After": str(int(wait_s) + 1)})
        given = request.headers.get(TECH_HEADER) or request.cookies.get(TECH_COOKIE) or ""
        if not given:  # no guess made: nothing to count
            return web.json_response({"error": "technician token missing"}, status=401)
        if not same_secret(given, self._token):
            self.lockout.failed(client)
            return web.json_response({"error": "technician token wrong"}, status=401)
        self.lockout.succeeded(client)
        return None


def require_token(gate: TechnicianGate, handler: Handler) -> Handler:
    """Wrap a handler so it runs only with the right token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        return gate.refusal(request) or await handler(request)

    return guarded


def decoded_registers(core: CoreView) -> dict[str, Any]:
    """The board's registers as last read by the core (no extra bus traffic) and as commanded."""
    snap = core.latest
    rmap = core.info.config.board.register_map()
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
    status = core.status  # what the core writes next cycle
    settings = core.info.board_settings
    commanded = {"brake_setpoint_ma": status.next_setpoint_ma, "control": status.next_control_bits,
                 "watchdog_ms": settings.watchdog_ms, "safe_brake_ma": settings.safe_brake_ma,
                 "ramp_ma_per_s": settings.ramp_ma_per_s}
    for f in rmap.holding_fields:
        if f.name in commanded:
            rows.append({"table": "holding", "name": f.name, "address": f.address, "value": commanded[f.name],
                         "unit": f.unit, "meaning": f.description})
    return {"board": core.info.board_url, "link_ok": snap is not None and snap.link_ok and status.link_ok,
            "rows": rows}


def faults(core: CoreView, data_dir: Path | None) -> dict[str, Any]:
    """This run's faults (from the core's status) and the latched ones (from the fault log)."""
    status = core.status
    log = FaultLog(data_dir) if data_dir is not None else None
    return {"active": list(status.active_faults), "brake_inhibited": status.brake_inhibited,
            "this_run": list(status.faults)[-50:],
            "latched": log.latched() if log is not None else [],
            "log": log.path.name if log is not None else None}  # a name, not a host path


def clear_faults(data_dir: Path | None, by: str) -> dict[str, Any]:
    """Clear the latched faults in the fault log; the core reads the log and lifts its brake
    inhibition on its own (controller/core/safety/supervisor.py)."""
    if data_dir is None:
        return {"cleared": [], "note": "no fault log in this run (no data directory)"}
    cleared = FaultLog(data_dir).clear(by)
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


def routes(core: CoreView, gate: TechnicianGate, clear_code: ClearCode,
           data_dir: Path | None) -> list[web.RouteDef]:
    async def registers(_: web.Request) -> web.StreamResponse:
        return web.json_response(decoded_registers(core))

    async def get_faults(_: web.Request) -> web.StreamResponse:
        return web.json_response(faults(core, data_dir), dumps=_dumps)

    async def post_clear(request: web.Request) -> web.StreamResponse:
        # Clearing re-enables the brake: the technician must be at the machine to read the code.
        try:
            body = loads_bounded(await request.read() or b"{}", _CLEAR_LIMITS)
        except BadJson as exc:
            return web.json_response({"error": f"body: {exc}"}, status=400)
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            clear_code.issue()
            return web.json_response({"error": "enter the code now shown on the machine's own terminal",
                                      "code_required": True}, status=428)
        if not clear_code.accept(code):
            gate.lockout.failed(request.remote or "unknown")
            return web.json_response({"error": "wrong or expired code: ask for a new one",
                                      "code_required": True}, status=403)
        by = f"technician via console ({request.remote or getpass.getuser()})"
        return web.json_response(clear_faults(data_dir, by))

    async def get_calibration(_: web.Request) -> web.StreamResponse:
        return web.json_response(calibration(data_dir))

    async def check(_: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    return [web.get("/api/tech/check", require_token(gate, check)),
            web.get("/api/tech/registers", require_token(gate, registers)),
            web.get("/api/tech/faults", require_token(gate, get_faults)),
            web.post("/api/tech/faults/clear", require_token(gate, post_clear)),
            web.get("/api/tech/calibration", require_token(gate, get_calibration))]


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
