"""The hub's athletes and classes on the web and on the broker.

HTTP (same access rules as the rest of the dashboard, controller/gym/web.py):
- `GET /api/athletes`: every athlete (no PIN hashes);
- `GET /api/athletes/{id}`: profile, bests, levels (with their measures), the next workout,
  each best's history, recent sessions;
- `GET /api/classes/{id}`: the class and its machines;
- `GET /api/classes/{id}/leaderboard`: a JSON array ordered by rank (`machine`, `athlete`,
  `distance_m`, `work_j`, `avg_power_w`, forward and backward apart, `status`);
- `GET /class/{id}`: the projector view of a class's live leaderboard;
- `GET /athlete/{id}`: an athlete's page (levels, bests, a history chart per best).

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

from controller.gym.athletes import AthleteNotFound, AthleteStore, athlete_page
from controller.gym.classes import CLASS_MAX_S, ClassNotFound, ClassStore, LiveClasses
from controller.gym.live import LiveBoard
from controller.gym.store import HubStoreError
from controller.gym.web import HubWeb
from controller.services.telemetry.fleet import MachineView
from controller.services.telemetry.service import make_client
from controller.services.telemetry.topics import MachineTopics
from controller.settings.mqtt import MqttSection

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
#: How often the roster is checked for changes (s) and the leaderboards published (s).
ROSTER_CHECK_S = 2.0
LEADERBOARD_S = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AthletesHub:
    """Athletes and classes of one hub: the stores, the live leaderboards, their routes."""

    def __init__(self, engine: Engine, board: LiveBoard, data_dir: Path | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
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
                              ("/class/{id}", self._page("class.html")),
                              ("/athlete/{id}", self._page("athlete.html"))):
            app.router.add_get(path, hub_web._viewer_only(self._not_found_is_404(handler)))

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
