"""The hub's athletes and classes on the web and on the broker.

HTTP (same access rules as the rest of the dashboard, controller/gym/web.py):
- `GET /api/athletes`: every athlete (no PIN hashes);
- `GET /api/athletes/{id}`: profile, bests, levels (with their measures), the next workout,
  each best's history, recent sessions;
- `GET /api/classes/{id}`: the class and its machines;
- `GET /api/classes/{id}/leaderboard`: a JSON array ordered by rank (`machine`, `athlete`,
  `distance_m`, `work_j`, `avg_power_w`, forward and backward apart, `status`);
- `GET /class/{id}`: the projector view of a class's live leaderboard;
- `GET /athlete/{id}`: an athlete's page (levels, bests, a history chart per best);
- `GET /api/workouts`: the workouts a class can run.

The front desk (the hub's own computer with `[web] trust_local`, or an operator session):
- `POST /api/athletes` `{name, body_mass_kg?, max_heart_rate_bpm?, pin?}` → `{"id": …}`;
- `POST /api/athletes/{id}/assign` `{machine}`: the machine's `sign-in` command;
- `POST /api/classes` `{workout, machines: [...], at?}` → `{"id", "start_at", "machines"}`.

MQTT (`publish_loop`, its own connection): the retained roster of each site the hub sees
(`<prefix>/<site>/athletes`) whenever it changes, and the leaderboard of every class still
going (`<prefix>/<site>/class/<id>/leaderboard`) once a second, and once more when it is over.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from aiohttp import web
from sqlalchemy import Engine

from controller.core.workouts.model import available_workouts, load_workout_file, workout_dirs
from controller.gym.athletes import AthleteError, AthleteNotFound, AthleteStore, athlete_page
from controller.gym.class_start import ClassStartError, parse_start, start_class
from controller.gym.classes import CLASS_MAX_S, ClassNotFound, ClassStore, LiveClasses
from controller.gym.commander import CommanderError, send_commands
from controller.gym.live import LiveBoard
from controller.gym.store import HubStoreError
from controller.gym.web import HubWeb
from controller.services.athletes.pin import PinFormatError
from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded
from controller.services.console.auth import SESSION_COOKIE, is_loopback
from controller.services.telemetry.fleet import MachineView
from controller.services.telemetry.service import make_client
from controller.services.telemetry.topics import MachineTopics
from controller.settings.mqtt import MqttSection

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
#: How often the roster is checked for changes (s) and the leaderboards published (s).
ROSTER_CHECK_S = 2.0
LEADERBOARD_S = 1.0
#: A front-desk request is a few hundred bytes (a class of 200 machines a few kB).
DESK_LIMITS = JsonLimits(max_bytes=16_384, max_depth=2)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AthletesHub:
    """Athletes and classes of one hub: the stores, the live leaderboards, their routes."""

    def __init__(self, engine: Engine, board: LiveBoard, settings: MqttSection, site: str,
                 data_dir: Path | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.settings = settings
        self.site = site
        self.athletes = AthleteStore(engine)
        self.classes = ClassStore(engine)
        self.board = board
        self.data_dir = data_dir
        self._monotonic = monotonic
        self.live = LiveClasses(self.classes, self._view, self._silent_s)

    def _view(self, site: str, machine: str) -> MachineView | None:
        return self.board.tracker.machines.get((site, machine))

    def _silent_s(self, view: MachineView) -> float:
        return float("inf") if view.last_seen_s is None else self._monotonic() - view.last_seen_s

    async def _db(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, call, *args)

    # --- HTTP ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application, hub_web: HubWeb) -> None:
        for path, handler in (("/api/athletes", self._list), ("/api/athletes/{id}", self._athlete),
                              ("/api/classes/{id}", self._class), ("/api/classes/{id}/leaderboard", self._board),
                              ("/api/workouts", self._workouts),
                              ("/class/{id}", self._page("class.html")),
                              ("/athlete/{id}", self._page("athlete.html"))):
            app.router.add_get(path, hub_web._viewer_only(self._not_found_is_404(handler)))
        for path, handler in (("/api/athletes", self._add), ("/api/athletes/{id}/assign", self._assign),
                              ("/api/classes", self._start)):
            app.router.add_post(path, self._desk_only(hub_web, self._not_found_is_404(handler)))

    @staticmethod
    def _desk_only(hub_web: HubWeb, handler: Handler) -> Handler:
        """The front desk: the hub's own screen (trust_local) or an operator session; viewers
        and strangers are refused, and a foreign Origin never gets here (the origin middleware)."""
        async def guarded(request: web.Request) -> web.StreamResponse:
            local = hub_web.web_cfg.trust_local and is_loopback(request.remote)
            if not local and hub_web.operators.role(request.cookies.get(SESSION_COOKIE)) != "operator":
                return web.json_response({"ok": False, "error": "the front desk only: the hub's own screen or an "
                                                                "operator session"}, status=403)
            try:
                return await handler(request)
            except HubStoreError as exc:
                log.error("gym hub: %s", exc)
                return web.json_response({"ok": False, "error": "the hub's database is not reachable just now"},
                                         status=503)
        return guarded

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = loads_bounded(await request.read(), DESK_LIMITS)
        except BadJson as exc:
            raise web.HTTPBadRequest(text=f"body: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body: a JSON object")
        return body

    async def _add(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        name, mass, max_hr, pin = (body.get(k) for k in ("name", "body_mass_kg", "max_heart_rate_bpm", "pin"))
        if not isinstance(name, str) or not isinstance(mass, int | float | None) \
                or not isinstance(max_hr, int | None) or not isinstance(pin, str | None):
            return web.json_response({"ok": False, "error": "name (text), body_mass_kg (number), "
                                                            "max_heart_rate_bpm (whole number), pin (digits)"},
                                     status=400)
        try:
            profile = await self._db(self.athletes.add, name, None if mass is None else float(mass), max_hr,
                                     "metric", pin)
        except (AthleteError, PinFormatError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"id": profile.id})

    async def _assign(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        machine = body.get("machine")
        if not isinstance(machine, str) or not machine or len(machine) > 200 or any(c in machine for c in "/+#"):
            return web.json_response({"ok": False, "error": "machine: a machine name"}, status=400)
        athlete = await self._db(self.athletes.athlete, request.match_info["id"])
        try:
            [answer] = await send_commands(self.settings, self.site, "sign-in",
                                           {machine: {"athlete": athlete.model_dump()}})
        except CommanderError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=503)
        return web.json_response(answer.as_json(), status=200 if answer.ok else 409)

    async def _start(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        workout, machines, at = body.get("workout"), body.get("machines"), body.get("at")
        if not isinstance(workout, str) or not isinstance(machines, list) \
                or not all(isinstance(m, str) for m in machines) or not isinstance(at, str | None):
            return web.json_response({"ok": False, "error": "workout (name), machines (list of names), at (time)"},
                                     status=400)
        try:
            start_at = parse_start(at, datetime.now(UTC))
            started = await start_class(self.engine, self.settings, self.site, workout, machines, start_at,
                                        self.data_dir)
        except (ClassStartError, ValueError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response(started.as_json())

    async def _workouts(self, _: web.Request) -> web.StreamResponse:
        out = []
        for name, path in available_workouts(workout_dirs(self.data_dir)).items():
            try:
                w = load_workout_file(path)
            except ValueError:
                continue
            out.append({"name": name, "title": w.title, "level": w.level, "duration_s": w.duration_s})
        return web.json_response(out)

    @staticmethod
    def _not_found_is_404(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (AthleteNotFound, ClassNotFound) as exc:
                return web.json_response({"ok": False, "error": str(exc)}, status=404)
        return wrapped

    async def _list(self, _: web.Request) -> web.StreamResponse:
        profiles = await self._db(self.athletes.profiles)
        return web.json_response([p.public() for p in profiles])

    async def _athlete(self, request: web.Request) -> web.StreamResponse:
        page = await self._db(athlete_page, self.athletes, request.match_info["id"], self.data_dir)
        return web.json_response(page)

    async def _class(self, request: web.Request) -> web.StreamResponse:
        info = await self._db(self.classes.get, request.match_info["id"])
        return web.json_response(info.as_json())

    async def _board(self, request: web.Request) -> web.StreamResponse:
        info = await self._db(self.classes.get, request.match_info["id"])
        rows = await self._db(self.live.leaderboard, info)
        return web.json_response(rows)

    @staticmethod
    def _page(name: str) -> Handler:
        async def page(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})
        return page

    # --- MQTT ------------------------------------------------------------------------------
    async def publish_loop(self, settings: MqttSection, default_site: str) -> None:
        """Publish rosters and leaderboards until cancelled, reconnecting with back-off."""
        identifier = f"millctl-gym-pub-{uuid.uuid4().hex[:8]}"
        backoff_s = settings.reconnect_min_s
        while True:
            try:
                async with make_client(settings, identifier) as client:
                    backoff_s = settings.reconnect_min_s
                    await self._publish(client, settings.prefix, default_site)
            except aiomqtt.MqttError as exc:
                log.debug("gym hub publisher: %s; retrying", exc)
            except HubStoreError as exc:
                log.error("gym hub publisher: %s; retrying", exc)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, settings.reconnect_max_s)

    async def _publish(self, client: aiomqtt.Client, prefix: str, default_site: str) -> None:
        published: dict[str, tuple[int, ...]] = {}  # roster version each site's retained roster shows
        last_roster_check = -1e9
        closed: set[str] = set()
        while True:
            sites = {default_site, *(site for site, _ in self.board.tracker.machines)}
            if self._monotonic() - last_roster_check >= ROSTER_CHECK_S:
                last_roster_check = self._monotonic()
                version = await self._db(self.athletes.roster_version)
                stale = sorted(site for site in sites if published.get(site) != version)
                if stale:  # rebuilt only when something changed (one cheap query otherwise)
                    roster = await self._db(self.athletes.roster, stale[0])
                    for site in stale:
                        payload = roster.model_copy(update={"site": site}).model_dump_json()
                        await client.publish(MachineTopics(prefix, site, "_").roster, payload, qos=1, retain=True)
                        published[site] = version
            since = datetime.now(UTC) - timedelta(seconds=CLASS_MAX_S)
            for info in await self._db(self.classes.recent, since):
                if info.id in closed:
                    continue
                payload = await self._db(self.live.payload, info)
                topic = MachineTopics(prefix, info.site, "_").leaderboard(info.id)
                await client.publish(topic, payload.model_dump_json(), qos=0, retain=True)
                rows = [r.model_dump() for r in payload.rows]
                if self.live.finished(info, rows):
                    closed.add(info.id)
            await asyncio.sleep(LEADERBOARD_S)
