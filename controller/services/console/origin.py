"""The console answers only to its own address: Origin and Host checks on everything that
can change the machine (docs/network-trust.md).

A browser attaches `Origin` to every cross-site POST and to every WebSocket upgrade, so a
page on `http://evil.example` that posts to the console (even as `text/plain`) or opens
its WebSocket is recognised and refused with 403, session cookie or not. The Host check
stops DNS rebinding: a foreign name that resolves to the machine is not the console's
address. Requests without an Origin come from programs, not pages, and pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _host_name(host_header: str) -> str:
    """`name:port` / `[v6]:port` → the name, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def known_host(host_header: str, allowed_names: Iterable[str]) -> bool:
    """An IP address, localhost, or a configured name (`[web] allowed_hosts`)."""
    name = _host_name(host_header)
    if name in ("localhost", *(n.lower() for n in allowed_names)):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def guarded(request: web.Request) -> bool:
    """Requests that can change something: every non-GET, and the WebSocket upgrade."""
    return request.method not in _SAFE_METHODS or request.path == "/ws" \
        or request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def refusal(request: web.Request, allowed_names: Iterable[str]) -> str | None:
    """Why this request is refused (a short reason), or None."""
    host = request.headers.get(hdrs.HOST, "")
    if not known_host(host, allowed_names):
        return "unknown host name: add it to [web] allowed_hosts if this console is reached by that name"
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None and origin.lower() not in (f"http://{host.lower()}", f"https://{host.lower()}"):
        return "cross-site request refused: commands are accepted only from this console's own pages"
    return None


def origin_middleware(allowed_names: tuple[str, ...]) -> Middleware:
    """An aiohttp middleware answering 403 to foreign origins and hosts on guarded requests."""

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        if guarded(request):
            reason = refusal(request, allowed_names)
            if reason is not None:
                return web.json_response({"ok": False, "error": reason}, status=403)
        return await handler(request)

    return check_origin
