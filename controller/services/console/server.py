"""The console server: aiohttp, static pages from the package, a WebSocket push of the live
state at `[web] push_hz`, commands through the core's `execute` (a `CoreView`,
controller/services/core_view.py), session downloads, and the
technician endpoints (controller/services/console/tech.py).

Pushes are triggered by the core's own snapshots: once the push period is over, the next
snapshot is sent as soon as the cycle produced it, so a browser sees a board sample a few
milliseconds after it was read (bench/bench_console.py measures it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from pydantic import TypeAdapter, ValidationError

from controller.core.commands import Command, CommandResult
from controller.services.athletes.feed import GymFeed
from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded
from controller.services.console import athletes, tech
from controller.services.console.auth import (
    SESSION_COOKIE,
    Announce,
    OperatorSessions,
    SecondsClock,
    announce_on_terminal,
    is_loopback,
)
from controller.services.console.errors import hide_internal_errors
from controller.services.console.origin import origin_middleware
from controller.services.console.sign_in import sign_in, sign_out
from controller.services.console.state import console_state
from controller.services.history.export import ExportFormatError, export_session
from controller.services.history.journal import storage_status
from controller.services.history.store import SessionNotFound, SessionStore, SessionStoreError

if TYPE_CHECKING:
    from controller.core.loop import Snapshot
    from controller.services.core_view import CoreView

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
_COMMAND = TypeAdapter(Command)
#: A command is a few hundred bytes; a WebSocket message wraps one.
COMMAND_LIMITS = JsonLimits(max_bytes=4096, max_depth=4)
#: Largest HTTP request body (aiohttp answers 413 above it).
MAX_BODY_BYTES = 16_384


class WebAddressError(ValueError):
    """A `--web` value that is not HOST:PORT."""


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`, or `[::1]:PORT`) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise WebAddressError(f"--web {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
    return (host.strip("[]") or "0.0.0.0"), int(port)


class Console:
    """The console of one machine's core: the aiohttp app and its WebSocket broadcaster."""

    def __init__(self, core: CoreView, data_dir: Path | None, clock: SecondsClock = time.monotonic,
                 announce: Announce = announce_on_terminal, feed: GymFeed | None = None) -> None:
        self.core = core
        self.data_dir = data_dir
        #: The hub's roster and leaderboards, and personal-best announcements (None: no hub).
        self.feed = feed
        web_cfg = core.info.config.web
        self.web_cfg = web_cfg
        self.operators = OperatorSessions(web_cfg.operator_pin, clock, announce)
        self.clear_code = tech.ClearCode(clock, announce)
        #: The backward over-speed limit (the safety net of backward running), shown at all times.
        self._backward_cap_kmh = round(core.info.config.safety.overspeed_backward_mps * 3.6, 1)
        self.push_period_s = 1.0 / web_cfg.push_hz
        self.sockets: set[web.WebSocketResponse] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._last_snap: Snapshot | None = None
        self._last_wall_ms: float | None = None
        self.pushes = 0
        self.app = web.Application(client_max_size=MAX_BODY_BYTES,
                                   middlewares=[hide_internal_errors, origin_middleware(web_cfg.allowed_hosts)])
        self.app.add_routes([
            web.get("/api/session", self._whoami), web.post("/api/session", self._sign_in),
            web.delete("/api/session", self._sign_out),
            web.get("/", self._page("index.html")), web.get("/tech", self._page("tech.html")),
            *athletes.routes(core, feed, self._command_refusal, clock),
            web.get("/ws", self._ws), web.get("/api/state", self._state),
            web.post("/api/command", self._command), web.get("/api/workouts", self._workouts),
            web.get("/api/sessions", self._sessions),
            web.get("/api/sessions/{id}/export.{fmt}", self._export),
            web.static("/static", STATIC_DIR),
            *tech.routes(core, tech.TechnicianGate(web_cfg.technician_token, clock), self.clear_code, data_dir),
        ])

    # --- the core's side -------------------------------------------------------------------
    def on_snapshot(self, snap: Snapshot) -> None:
        """Snapshot listener (as each snapshot arrives): note the arrival time, wake the broadcaster."""
        self._last_snap = snap
        # Back-date the stamp to when the sample arrived from the board (host_time_s is on the
        # core's clock, CLOCK_MONOTONIC like the view's); a virtual clock's age is meaningless, so
        # only a plausible one is used.
        age_s = self.core.clock.now_s() - snap.sample.host_time_s if snap.sample.host_time_s else 0.0
        self._last_wall_ms = (time.time() - (age_s if 0.0 <= age_s < 0.5 else 0.0)) * 1000.0
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _next_snapshot(self, timeout_s: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        handle = asyncio.get_running_loop().call_later(timeout_s, _settle, fut)
        try:
            await fut
        finally:
            handle.cancel()

    def state(self) -> dict[str, Any]:
        return {**console_state(self.core, self._last_snap or self.core.latest, self._last_wall_ms),
                **athletes.athlete_state(self.core, self.feed),
                "storage": storage_status(self.data_dir), "backward_cap_kmh": self._backward_cap_kmh}

    async def broadcast(self) -> None:
        """Push the state to every socket at push_hz, each push right after a fresh sample."""
        while True:
            started = time.monotonic()
            if self.sockets:
                await self._next_snapshot(self.push_period_s)
                text = json.dumps(self.state())
                for ws in list(self.sockets):
                    try:
                        await ws.send_str(text)
                    except (ConnectionError, RuntimeError):
                        self.sockets.discard(ws)
                self.pushes += 1
            await asyncio.sleep(max(0.0, self.push_period_s - (time.monotonic() - started)))

    # --- handlers ----------------------------------------------------------------------------
    @staticmethod
    def _page(name: str) -> Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]:
        async def handler(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})

        return handler

    async def execute(self, payload: Any) -> CommandResult:
        try:
            command = _COMMAND.validate_python(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return CommandResult.refused(f"bad command ({where}: {first['msg']})", self.core.status.session_state)
        return await self.core.execute(command)

    # --- who may do what (controller/services/console/auth.py) ---------------------------------
    def _trusted_local(self, request: web.Request) -> bool:
        return self.web_cfg.trust_local and is_loopback(request.remote)

    def _command_refusal(self, request: web.Request) -> tuple[int, str] | None:
        """(status, reason) when this client may not command the machine, else None."""
        if self._trusted_local(request):
            return None
        role = self.operators.role(request.cookies.get(SESSION_COOKIE))
        if role == "operator":
            return None
        if role == "viewer":
            return 403, "this screen is paired read-only"
        return 401, "sign in first: the operator PIN, or the pairing code shown on the machine's terminal"

    def _may_view(self, request: web.Request) -> bool:
        return self.web_cfg.live_view_open or self._trusted_local(request) \
            or self.operators.role(request.cookies.get(SESSION_COOKIE)) is not None

    async def _whoami(self, request: web.Request) -> web.StreamResponse:
        refusal = self._command_refusal(request)
        return web.json_response({"can_command": refusal is None, "can_view": self._may_view(request),
                                  "role": self.operators.role(request.cookies.get(SESSION_COOKIE)),
                                  "reason": refusal[1] if refusal else None})

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        return await sign_in(request, self.operators, viewer_only=False)

    async def _sign_out(self, request: web.Request) -> web.StreamResponse:
        return await sign_out(request, self.operators)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self._may_view(request):
            return web.json_response({"ok": False, "error": "sign in to watch this machine"}, status=401)
        refusal = self._command_refusal(request)  # decided once, at the upgrade
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=COMMAND_LIMITS.max_bytes)
        await ws.prepare(request)
        self.sockets.add(ws)
        await ws.send_str(json.dumps(self.state()))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    payload = loads_bounded(msg.data, COMMAND_LIMITS)
                except BadJson as exc:
                    await ws.send_str(json.dumps({"type": "result", "ok": False, "error": str(exc)}))
                    continue
                if isinstance(payload, dict) and payload.get("type") == "command":
                    result = await self.execute(payload.get("command")) if refusal is None else \
                        CommandResult.refused(refusal[1], self.core.status.session_state)
                    await ws.send_str(json.dumps({"type": "result", "id": payload.get("id"),
                                                  **result.model_dump()}))
                    await ws.send_str(json.dumps(self.state()))  # show the new state at once
        finally:
            self.sockets.discard(ws)
        return ws

    async def _state(self, request: web.Request) -> web.StreamResponse:
        if not self._may_view(request):
            return web.json_response({"ok": False, "error": "sign in to watch this machine"}, status=401)
        return web.json_response(self.state())

    async def _command(self, request: web.Request) -> web.StreamResponse:
        refusal = self._command_refusal(request)
        if refusal is not None:
            return web.json_response({"ok": False, "error": refusal[1]}, status=refusal[0])
        try:
            payload = loads_bounded(await request.read(), COMMAND_LIMITS)
        except BadJson as exc:
            return web.json_response({"ok": False, "error": f"body: {exc}"}, status=400)
        result = await self.execute(payload)
        return web.json_response(result.model_dump(), status=200 if result.ok else 409)

    async def _workouts(self, _: web.Request) -> web.StreamResponse:
        out: list[dict[str, Any]] = []
        try:
            from controller.core.workouts.model import available_workouts, load_workout_file
        except ImportError:
            return web.json_response([])
        for name, path in sorted(available_workouts(list(self.core.info.workout_dirs)).items()):
            try:
                w = load_workout_file(path)
            except Exception as exc:  # one bad file must not hide the others
                # The message without the file's host path: the page shows it to anyone.
                out.append({"name": name, "title": name, "error": str(exc).replace(str(path), path.name)})
                continue
            out.append({"name": name, "title": w.title, "level": w.level, "segments": len(w.segments),
                        "duration_s": w.duration_s, "description": w.description})
        return web.json_response(out)

    def _store(self) -> SessionStore:
        if self.data_dir is None:
            raise web.HTTPNotFound(text="no session history in this run (no data directory)")
        return SessionStore(self.data_dir)

    async def _sessions(self, _: web.Request) -> web.StreamResponse:
        with self._store() as store:
            return web.json_response([s.list_entry() for s in store.list_sessions()[:100]])

    async def _export(self, request: web.Request) -> web.StreamResponse:
        sid, fmt = request.match_info["id"], request.match_info["fmt"]
        try:
            with self._store() as store:
                exp = await asyncio.to_thread(_export_in_thread, store.path.parent, sid, fmt)
        except SessionNotFound:
            raise web.HTTPNotFound(text=f"no session {sid!r} (see the session history)") from None
        except ExportFormatError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        except SessionStoreError as exc:
            log.error("console: session export failed: %s", exc)  # the path stays on the machine
            raise web.HTTPServiceUnavailable(text="session history unavailable; see the machine's log") from None
        return web.Response(body=exp.data, content_type=exp.content_type,
                            headers={"Content-Disposition": f'attachment; filename="{exp.filename}"'})


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _export_in_thread(data_dir: Path, sid: str, fmt: str) -> Any:
    # Own connection: sqlite3 connections belong to the thread that made them.
    with SessionStore(data_dir) as store:
        return export_session(store, sid, fmt)


def console_service(address: str, data_dir: Path | None,
                    ready: Callable[[str], None] | None = None, clock: SecondsClock = time.monotonic,
                    announce: Announce = announce_on_terminal, feed: GymFeed | None = None,
                    ) -> Callable[[CoreView], Coroutine[Any, Any, None]]:
    """The console as a service for `run_controller`. Port 0 picks a free port; `ready`
    is called with the URL once it listens; `clock` times sessions and lockouts; `announce`
    shows pairing and fault-clear codes on the machine's own terminal; `feed` brings the hub's
    athlete roster and class leaderboards (controller/services/athletes/feed.py)."""
    host, port = parse_address(address)

    async def service(core: CoreView) -> None:
        console = Console(core, data_dir, clock, announce, feed)
        runner = web.AppRunner(console.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.error("operator console not started: cannot listen on %s:%d (%s); use --web HOST:PORT "
                      "or --no-web", host, port, exc.strerror)
            return
        bound = runner.addresses[0][1] if runner.addresses else port
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}/"
        log.info("operator console at %s", url)
        if not (core.info.config.web.trust_local and is_loopback(host)):
            console.operators.open_pairing()  # someone off the machine may need to sign in
        if ready is not None:
            ready(url)
        core.snapshot_listeners.append(console.on_snapshot)
        pusher = asyncio.create_task(console.broadcast())
        try:
            await asyncio.Event().wait()
        finally:
            core.snapshot_listeners.remove(console.on_snapshot)
            pusher.cancel()
            for ws in list(console.sockets):
                await ws.close()
            await runner.cleanup()

    return service
