"""No traceback and no host path ever reaches a client: unexpected errors become a short
JSON answer, the details go to the machine's log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def hide_internal_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer an unexpected exception with 500 and a generic message; log it in full here."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        return web.json_response({"ok": False, "error": "internal error; the details are in the machine's log"},
                                 status=500)
