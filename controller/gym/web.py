"""The hub's dashboard and HTTP API (aiohttp): tiles pushed over a WebSocket at up to
`PUSH_HZ`, the session history, its totals and exports.

Access follows the machine console (docs/network-trust.md): with `[web] trust_local` the
hub's own computer needs no sign-in; anyone else signs in with the `[web] operator_pin` (or
the one-time pairing code the hub prints at start); WebSocket upgrades and every non-GET
from a foreign Origin are refused (403); no answer ever carries a traceback or a host path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from controller.gym.live import LiveBoard
from controller.gym.store import DIRECTIONS, MAX_PAGE, HubSessionNotFound, HubStore, HubStoreError, SessionFilter
from controller.services.console.auth import SESSION_COOKIE, OperatorSessions, is_loopback
from controller.services.console.errors import hide_internal_errors
from controller.services.console.origin import origin_middleware
from controller.services.console.sign_in import sign_in, sign_out
from controller.services.history.export import ExportFormatError
from controller.settings.web import WebSection

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
#: Pushes per second at most (the machines' telemetry comes at 2 Hz by default).
PUSH_HZ = 10.0
MAX_BODY_BYTES = 4096
_FILTER_TEXT_MAX = 200
_EXPORTS = {"fit", "csv"}


class BadQuery(ValueError):
    """A query parameter the API cannot use (answered 400 with this text)."""


def _text(query: Any, name: str) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    if len(value) > _FILTER_TEXT_MAX:
        raise BadQuery(f"{name}: at most {_FILTER_TEXT_MAX} characters")
    return str(value)


def _day(query: Any, name: str) -> date | None:
    value = _text(query, name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name}: expected a date like 2026-12-05") from None


def _int(query: Any, name: str, default: int, low: int, high: int) -> int:
    value = _text(query, name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise BadQuery(f"{name}: expected a whole number from {low} to {high}")
    return int(value)


def session_filter(query: Any) -> SessionFilter:
    """The filters of `/api/sessions` and `/api/totals` from a query string."""
    direction = _text(query, "direction")
    if direction is not None and direction not in DIRECTIONS:
        raise BadQuery(f"direction: one of {', '.join(DIRECTIONS)}")
    return SessionFilter(machine=_text(query, "machine"), site=_text(query, "site"), since=_day(query, "since"),
                         until=_day(query, "until"), workout=_text(query, "workout"), direction=direction)


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


class HubWeb:
    """The dashboard's server. `stats` supplies `/api/hub` (the link's counters)."""

    def __init__(self, board: LiveBoard, store: HubStore, web_cfg: WebSection,
                 stats: Callable[[], dict[str, Any]] = dict, clock: Callable[[], float] = time.monotonic) -> None:
        self.board = board
        self.store = store
        self.web_cfg = web_cfg
        self.stats = stats
        self.operators = OperatorSessions(web_cfg.operator_pin, clock)
        self.sockets: set[web.WebSocketResponse] = set()
        self.pushes = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES,
                              middlewares=[hide_internal_errors, origin_middleware(self.web_cfg.allowed_hosts)])
        app.router.add_get("/", self._page)
        app.router.add_static("/static", STATIC_DIR)
        guarded: list[tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("/api/machines", self._machines), ("/api/sessions", self._sessions),
            ("/api/sessions/{id}", self._session), ("/api/sessions/{id}/records", self._records),
            ("/api/sessions/{id}/export/{fmt}", self._export), ("/api/totals", self._totals),
            ("/api/hub", self._hub), ("/ws", self._ws)]
        for path, handler in guarded:
            app.router.add_get(path, self._viewer_only(handler))
        app.router.add_get("/api/whoami", self._whoami)
        app.router.add_post("/api/sign-in", self._sign_in)
        app.router.add_post("/api/sign-out", self._sign_out)
        return app

    # --- access ------------------------------------------------------------------------
    def may_view(self, request: web.Request) -> bool:
        return (self.web_cfg.trust_local and is_loopback(request.remote)) \
            or self.operators.role(request.cookies.get(SESSION_COOKIE)) is not None

    def _viewer_only(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.may_view(request):
                return _bad("sign in first: the operator PIN, or the pairing code shown on the hub's terminal", 401)
            try:
                return await handler(request)
            except BadQuery as exc:
                return _bad(str(exc))
            except HubSessionNotFound:
                return _bad("no such session", 404)
            except HubStoreError as exc:
                log.error("gym hub: %s", exc)
                return _bad("the hub's database is not reachable just now; try again shortly", 503)
        return guarded

    async def _whoami(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"can_view": self.may_view(request)})

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        return await sign_in(request, self.operators, viewer_only=True)

    async def _sign_out(self, request: web.Request) -> web.StreamResponse:
        return await sign_out(request, self.operators)

    # --- pages and data ----------------------------------------------------------------
    async def _page(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _machines(self, _: web.Request) -> web.StreamResponse:
        return web.json_response(self.board.machines())

    async def _db(self, call: Callable[..., Any], *args: Any) -> Any:
        # Reads in the default pool: a slow database never stalls the pushes.
        return await asyncio.get_running_loop().run_in_executor(None, call, *args)

    async def _sessions(self, request: web.Request) -> web.StreamResponse:
        where = session_filter(request.query)
        limit = _int(request.query, "limit", 50, 1, MAX_PAGE)
        offset = _int(request.query, "offset", 0, 0, 10**9)
        rows = await self._db(self.store.list_sessions, where, limit, offset)
        total = await self._db(self.store.count, where)
        return web.json_response({"total": total, "limit": limit, "offset": offset, "sessions": rows})

    async def _session(self, request: web.Request) -> web.StreamResponse:
        entry, summary, _ = await self._db(self.store.session, request.match_info["id"])
        return web.json_response({**entry, "summary": summary.model_dump(mode="json")})

    async def _records(self, request: web.Request) -> web.StreamResponse:
        _, _, stored = await self._db(self.store.session, request.match_info["id"])
        return web.json_response([{"t_s": r.t_s, "speed_mps": r.speed_mps, "power_w": r.power_w}
                                  for r in stored])

    async def _export(self, request: web.Request) -> web.StreamResponse:
        fmt = request.match_info["fmt"]
        if fmt not in _EXPORTS:
            return _bad("format: fit or csv", 404)
        try:
            export = await self._db(self.store.export, request.match_info["id"], fmt)
        except ExportFormatError as exc:
            return _bad(str(exc), 404)
        return web.Response(body=export.data, content_type=export.content_type, headers={
            "Content-Disposition": f'attachment; filename="{_safe_filename(export.filename)}"'})

    async def _totals(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self._db(self.store.totals, session_filter(request.query)))

    async def _hub(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"machines": len(self.board.tracker.machines), "sockets": len(self.sockets),
                                  "pushes": self.pushes, **self.stats()})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1024)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            await ws.send_str(json.dumps({"type": "machines", "full": True, "machines": self.board.machines()}))
            async for _ in ws:  # the dashboard only listens; whatever it sends is ignored
                pass
        finally:
            self.sockets.discard(ws)
        return ws

    async def push_loop(self) -> None:
        """Send what changed to every open dashboard, at most `PUSH_HZ` times a second."""
        while True:
            await asyncio.sleep(1.0 / PUSH_HZ)
            changes = self.board.changes()
            if not changes or not self.sockets:
                continue
            text = json.dumps({"type": "machines", "full": False, "machines": changes})
            self.pushes += 1
            for ws in list(self.sockets):
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    self.sockets.discard(ws)


def _safe_filename(name: str) -> str:
    """A session id in a header: only characters that cannot break it."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:200]
