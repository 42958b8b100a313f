"""The sign-in and sign-out endpoints, shared by the machine's console and the gym hub's
dashboard: one lockout, one cookie, one set of answers (docs/network-trust.md)."""

from __future__ import annotations

from aiohttp import web

from controller.services.bounded_json import BadJson, JsonLimits, loads_bounded
from controller.services.console.auth import SESSION_COOKIE, OperatorSessions

#: A sign-in body is a PIN and a flag: anything bigger or deeper is refused before parsing.
SIGN_IN_LIMITS = JsonLimits(max_bytes=1024, max_depth=2)


def _refuse(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status, headers=headers)


async def sign_in(request: web.Request, operators: OperatorSessions, *, viewer_only: bool) -> web.Response:
    """Check `{"pin": …, "read_only": …}` against the PIN (or pairing code) and set the session
    cookie. `viewer_only` signs every client in read-only (the hub's dashboard has nothing to
    command). A client that keeps guessing is locked out (429 with Retry-After)."""
    client = request.remote or "unknown"
    wait_s = operators.lockout.locked_for_s(client)
    if wait_s > 0:
        return _refuse(f"too many wrong PINs: try again in {wait_s:.0f} s", 429,
                       {"Retry-After": str(int(wait_s) + 1)})
    try:
        body = loads_bounded(await request.read(), SIGN_IN_LIMITS)
    except BadJson as exc:
        return _refuse(f"body: {exc}", 400)
    pin = body.get("pin") if isinstance(body, dict) else None
    read_only = viewer_only or (isinstance(body, dict) and bool(body.get("read_only")))
    session_id = operators.sign_in(pin, read_only) if isinstance(pin, str) else None
    if session_id is None:
        operators.lockout.failed(client)
        return _refuse("wrong PIN or pairing code", 401)
    operators.lockout.succeeded(client)
    response = web.json_response({"ok": True, "role": "viewer" if read_only else "operator"})
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Strict", path="/")
    return response


async def sign_out(request: web.Request, operators: OperatorSessions) -> web.Response:
    """End the session named by the cookie (if any) and drop the cookie."""
    operators.sign_out(request.cookies.get(SESSION_COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
