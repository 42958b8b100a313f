"""`millctl gym serve`: the database (migrated at start), the MQTT link and its writer, the
dashboard and its push loop, in one asyncio process until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import Engine

from controller.gym.athletes_web import AthletesHub
from controller.gym.database import DatabaseError, open_engine, safe_url
from controller.gym.link import DEFAULT_CLIENT_ID, HubLink
from controller.gym.live import LiveBoard
from controller.gym.store import HubStore
from controller.gym.web import HubWeb
from controller.services.console.server import parse_address
from controller.settings.mqtt import MqttSection
from controller.settings.web import WebSection

log = logging.getLogger(__name__)
DEFAULT_WEB = "127.0.0.1:8090"
START_RETRY_MAX_S = 30.0


@dataclass(frozen=True)
class HubOptions:
    """What `gym serve` was asked for."""

    mqtt: MqttSection
    db_url: str
    web_address: str = DEFAULT_WEB
    web: WebSection = field(default_factory=WebSection)
    client_id: str = DEFAULT_CLIENT_ID
    #: The site whose roster is published even before any machine of it is seen.
    site: str = "gym"


async def open_when_ready(db_url: str) -> Engine:
    """The engine, migrated; while the database cannot be reached (PostgreSQL still starting),
    say so and retry with back-off."""
    wait_s = 0.5
    failures = 0
    while True:
        try:
            return await asyncio.to_thread(open_engine, db_url)
        except DatabaseError as exc:
            failures += 1
            if failures == 1 or wait_s >= START_RETRY_MAX_S:
                log.error("gym hub: %s; retrying", exc)
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, START_RETRY_MAX_S)


def link_stats(link: HubLink) -> dict[str, Any]:
    return {"mqtt_connected": link.connected.is_set(), **asdict(link.stats)}


async def serve_hub(options: HubOptions) -> None:
    """Run the hub until cancelled or signalled."""
    host, port = parse_address(options.web_address)
    engine = await open_when_ready(options.db_url)
    store = HubStore(engine)
    board = LiveBoard(options.mqtt.prefix)
    link = HubLink(options.mqtt, board.tracker, store, client_id=options.client_id, on_live=board.touched)
    hub_web = HubWeb(board, store, options.web, stats=lambda: link_stats(link))
    athletes_hub = AthletesHub(engine, board, options.mqtt, options.site)  # athletes and classes (issue 14)
    app = hub_web.app()
    athletes_hub.add_routes(app, hub_web)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    print(f"gym hub: dashboard http://{host}:{port}/, following mqtt://{options.mqtt.host}:"
          f"{options.mqtt.effective_port}/{options.mqtt.prefix}/#, history in {safe_url(options.db_url)}",
          file=sys.stderr, flush=True)
    if not options.web.trust_local or host not in ("127.0.0.1", "localhost", "::1"):
        hub_web.operators.open_pairing()
    tasks = [asyncio.create_task(link.run()), asyncio.create_task(hub_web.push_loop()),
             asyncio.create_task(athletes_hub.publish_loop(options.mqtt, options.site))]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
        engine.dispose()
