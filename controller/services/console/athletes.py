"""The athlete's part of the console: who is signed in and at which level, the roster to pick
from (the hub's, over MQTT: controller/services/athletes/feed.py), sign-in with an optional
PIN, the class countdown and rank, and personal-best announcements.

Sign-in here is the `sign-in` command, run through the core's `execute` like every other
command, after the same authorisation as any console command (trusted local screen or an
operator session) and, when the athlete has a PIN, the PIN (wrong PINs lock the client out
as wrong operator PINs do). The roster's PIN hashes never leave the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from controller.core.athlete import Athlete
from controller.core.commands import CommandResult, SignIn
from controller.services.athletes.feed import GymFeed
from controller.services.athletes.pin import check_pin
from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded
from controller.services.console.auth import Lockout, SecondsClock
from controller.services.telemetry.payloads import RosterEntry

if TYPE_CHECKING:
    from controller.services.core_view import CoreView

SIGN_IN_LIMITS = JsonLimits(max_bytes=512, max_depth=1)
#: Refusal check of the console: (status, reason) or None when this client may command.
Refusal = Callable[[web.Request], "tuple[int, str] | None"]


def athlete_state(core: CoreView, feed: GymFeed | None) -> dict[str, Any]:
    """What the athlete's screen shows beside the live figures (from the core's status)."""
    status = core.status
    athlete = status.athlete
    group_class = status.group_class
    out: dict[str, Any] = {
        "athlete": None if athlete is None else {
            "id": athlete.id, "name": athlete.name, "level": athlete.levels.overall(),
            "levels": athlete.levels.model_dump(), "body_mass_kg": status.body_mass_kg},
        "class": None, "personal_bests": [], "roster_size": len(feed.roster) if feed else 0}
    if group_class is not None:
        out["class"] = {"id": group_class.class_id, "workout": group_class.workout,
                        "start_at": group_class.start_at, "starts_in_s": group_class.starts_in_s}
    if feed is not None:
        if out["class"] is not None:
            out["class"]["rank"] = feed.rank(out["class"]["id"], core.info.config.machine.name)
        who = athlete.id if athlete else None
        out["personal_bests"] = [{"key": a.key, "value": a.value, "previous": a.previous}
                                 for a in feed.current_announcements() if a.athlete == who]
    return out


def roster_entry_json(entry: RosterEntry) -> dict[str, Any]:
    """One roster athlete as the picker shows it: no PIN hash, no bests."""
    return {"id": entry.id, "name": entry.name, "level": entry.levels.overall(),
            "levels": entry.levels.model_dump(), "pin_required": entry.pin is not None}


def routes(core: CoreView, feed: GymFeed | None, refusal: Refusal, clock: SecondsClock) -> list[web.RouteDef]:
    """`GET /api/athletes` (the roster) and `POST /api/athletes/sign-in` ({athlete, pin?}), both
    for clients that may command the machine."""
    lockout = Lockout(clock, "athlete PIN")

    async def roster(request: web.Request) -> web.StreamResponse:
        # Names of the gym's members are for signing in, not for whoever may watch the live view.
        denied = refusal(request)
        if denied is not None:
            return web.json_response({"ok": False, "error": denied[1]}, status=denied[0])
        entries = sorted(feed.roster.values(), key=lambda a: a.name.casefold()) if feed else []
        return web.json_response([roster_entry_json(a) for a in entries])

    async def sign_in(request: web.Request) -> web.StreamResponse:
        denied = refusal(request)
        if denied is not None:
            return web.json_response({"ok": False, "error": denied[1]}, status=denied[0])
        client = request.remote or "unknown"
        wait_s = lockout.locked_for_s(client)
        if wait_s > 0:
            return web.json_response({"ok": False, "error": f"too many wrong PINs: try again in {wait_s:.0f} s"},
                                     status=429, headers={"Retry-After": str(int(wait_s) + 1)})
        try:
            body = loads_bounded(await request.read(), SIGN_IN_LIMITS)
        except BadJson as exc:
            return web.json_response({"ok": False, "error": f"body: {exc}"}, status=400)
        athlete_id = body.get("athlete") if isinstance(body, dict) else None
        pin = body.get("pin") if isinstance(body, dict) else None
        entry = feed.roster.get(athlete_id) if feed is not None and isinstance(athlete_id, str) else None
        if entry is None:
            return web.json_response({"ok": False, "error": "no such athlete in the gym's list"}, status=404)
        if entry.pin is not None:
            ok = isinstance(pin, str) and await asyncio.to_thread(
                check_pin, pin, entry.pin.salt_hex, entry.pin.scrypt_hex)  # scrypt: off the event loop
            if not ok:
                lockout.failed(client)
                return web.json_response({"ok": False, "error": "wrong PIN"}, status=401)
            lockout.succeeded(client)
        athlete = Athlete.model_validate(entry.model_dump(exclude={"pin"}))
        result: CommandResult = await core.execute(SignIn(athlete=athlete))
        return web.json_response(result.model_dump(), status=200 if result.ok else 409)

    return [web.get("/api/athletes", roster), web.post("/api/athletes/sign-in", sign_in)]
